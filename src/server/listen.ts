import { watchFile, unwatchFile } from 'node:fs';
import { readFile } from 'node:fs/promises';
import {
  createServer as createHttpServer,
  type IncomingMessage,
  type RequestListener,
  type Server,
  type ServerOptions,
  type ServerResponse,
} from 'node:http';
import { createServer as createHttpsServer, type Server as HttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { VaultgateError } from '../errors.js';
import type { Logger } from '../log/logger.js';

/** Node's HTTP limits, set for a service that answers small requests fast. */
export const SERVER_LIMITS: ServerOptions = {
  // Runners send one Authorization header; 16 KiB leaves room and refuses floods (431).
  maxHeaderSize: 16 * 1024,
  // Slow clients may not hold a connection: headers within 10 s, the whole request within 30 s.
  headersTimeout: 10_000,
  requestTimeout: 30_000,
  keepAliveTimeout: 5_000,
  // How often Node checks those timeouts (its default, 30 s, would make them meaningless).
  connectionsCheckingInterval: 1_000,
};

export interface Listening {
  server: Server | HttpsServer;
  url: string;
  close(): Promise<void>;
}

export interface ListenOptions {
  host: string;
  port: number;
  tls?: { certFile: string; keyFile: string } | undefined;
  logger: Logger;
  /** The variable that set this address, named when it cannot be opened (VAULTGATE_LISTEN by default). */
  variable?: string;
}

/** Serves the app over HTTP, or HTTPS with a certificate reloaded whenever its files change. */
export async function listen(
  handle: (req: IncomingMessage, res: ServerResponse) => Promise<void>,
  options: ListenOptions,
): Promise<Listening> {
  // Koa's handler settles its own promise (its errors go to the app's error handling); node:http wants no promise back.
  const handler: RequestListener = (req, res) => void handle(req, res);
  const { tls, logger } = options;
  const readPair = async () =>
    tls ? { cert: await readFile(tls.certFile), key: await readFile(tls.keyFile) } : undefined;
  const pair = await readPair();
  const server = pair
    ? createHttpsServer({ ...SERVER_LIMITS, ...pair }, handler)
    : createHttpServer(SERVER_LIMITS, handler);

  const reload = () => {
    readPair().then(
      (next) => {
        (server as HttpsServer).setSecureContext(next!);
        logger.info({ certFile: tls!.certFile }, 'tls certificate reloaded');
      },
      (err: Error) => logger.error({ error: err.message }, 'tls certificate reload failed; keeping the current one'),
    );
  };
  await new Promise<void>((resolve, reject) => {
    server.once('error', (err: NodeJS.ErrnoException) => reject(listenError(err, options)));
    server.listen(options.port, options.host, () => resolve());
  });
  if (tls) {
    // Polling, because certificate managers replace files by renaming (and Kubernetes by symlink swaps).
    watchFile(tls.certFile, { interval: 2000 }, reload);
    watchFile(tls.keyFile, { interval: 2000 }, reload);
  }
  const address = server.address() as AddressInfo;
  const host = address.family === 'IPv6' ? `[${address.address}]` : address.address;
  return {
    server,
    url: `${tls ? 'https' : 'http'}://${host}:${address.port}`,
    close: () =>
      new Promise<void>((resolve) => {
        if (tls) {
          unwatchFile(tls.certFile, reload);
          unwatchFile(tls.keyFile, reload);
        }
        server.close(() => resolve());
        server.closeIdleConnections();
      }),
  };
}

/** Why the socket could not be opened, in words that say what to change. */
function listenError(err: NodeJS.ErrnoException, { host, port, variable = 'VAULTGATE_LISTEN' }: ListenOptions): Error {
  const where = `${host.includes(':') ? `[${host}]` : host}:${port}`;
  const hint =
    err.code === 'EADDRINUSE'
      ? `another process is listening there; stop it or set ${variable} to a free host:port`
      : err.code === 'EACCES'
        ? `this user may not open that port; set ${variable} to a port above 1023 or grant the capability`
        : err.code === 'EADDRNOTAVAIL'
          ? `no interface of this machine has that address; check ${variable}`
          : `${err.message}; check ${variable}`;
  return new ListenError(`cannot listen on ${where} (${err.code ?? 'error'}): ${hint}`, { cause: err });
}

/** The server socket could not be opened. */
export class ListenError extends VaultgateError {
  constructor(message: string, options: { cause: Error }) {
    super('ERR_LISTEN', message, options);
  }
}
