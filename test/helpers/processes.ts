import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import getPort, { portNumbers } from 'get-port';
import { record } from './run-record.js';

export const ROOT = resolve(import.meta.dirname, '..', '..');
export const TOOLS_BIN = join(ROOT, '.tools', 'bin');
/** The OPA CLI tools/build.sh installs. */
export const OPA = join(TOOLS_BIN, 'opa');

export const tempDir = (prefix: string) => mkdtempSync(join(tmpdir(), `vaultgate-${prefix}-`));

/**
 * Ports 20000–39999, from a random one on and round: get-port takes the first free port of
 * the list, so a fixed start handed every caller the lowest free port, one a test's server had
 * just let go of among them (a killed Vault node, about to restart on it), and handed a
 * caller that found the port after it taken the same port again and again.
 */
export function highPorts(): Iterable<number> {
  const start = 20000 + Math.floor(Math.random() * 20000);
  return (function* () {
    yield* portNumbers(start, 39999);
    if (start > 20000) yield* portNumbers(20000, start - 1);
  })();
}

/** A free loopback port whose next port is free too (Vault's dev cluster listener takes port + 1). */
export async function freePortPair(): Promise<number> {
  for (;;) {
    const port = await getPort({ port: highPorts(), host: '127.0.0.1' });
    if ((await getPort({ port: port + 1, host: '127.0.0.1' })) === port + 1) return port;
  }
}

/**
 * Polls `check` until it says yes; errors it throws count as "not yet" (a
 * server not listening yet refuses connections). `gone` reports a process that
 * died meanwhile, which ends the wait at once.
 */
export async function waitFor(
  what: string,
  check: () => Promise<boolean>,
  timeoutMs = 30_000,
  gone?: ChildProcess,
): Promise<void> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    if (gone && gone.exitCode !== null) throw new Error(`${what}: the process exited with ${gone.exitCode}`);
    if (await check().catch(() => false)) return;
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/**
 * Spawns a server process and remembers its output for when something goes wrong.
 * Its standard error (the server's log) goes to the leak scan line by line as it
 * comes; standard output does not: Vault's dev-mode banner prints its root token
 * there by design, and its log lines are on standard error.
 */
export function launch(
  command: string,
  args: string[],
  env: NodeJS.ProcessEnv = {},
  /** Streams holding the server's log, scanned for leaks (redis-server logs on standard output). */
  logStreams: Array<'stdout' | 'stderr'> = ['stderr'],
): { child: ChildProcess; output: () => string } {
  const child = spawn(command, args, { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  for (const name of ['stdout', 'stderr'] as const) {
    const scanned = logStreams.includes(name);
    let partial = '';
    child[name]!.on('data', (d: Buffer) => {
      output += d.toString();
      if (!scanned) return;
      // Whole lines only, so a value split between two chunks is still found.
      const lines = (partial + d.toString()).split('\n');
      partial = lines.pop()!;
      record('logs', lines.join('\n'));
    });
    if (scanned) child[name]!.on('end', () => record('logs', partial));
  }
  return { child, output: () => output };
}

export function stopProcess(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    child.once('exit', () => resolve());
    child.kill('SIGTERM');
    setTimeout(() => child.kill('SIGKILL'), 5000).unref();
  });
}

/**
 * Parallel test files may pick the same free port: the server that loses the
 * race fails to start, is stopped, and tries again on another port.
 */
export async function startOnFreePort<S extends { stop(): Promise<void> }>(
  create: () => Promise<S>,
  boot: (server: S) => Promise<void>,
): Promise<S> {
  for (let attempt = 1; ; attempt++) {
    const server = await create();
    try {
      await boot(server);
      return server;
    } catch (err) {
      await server.stop();
      if (attempt >= 5) throw err;
    }
  }
}
