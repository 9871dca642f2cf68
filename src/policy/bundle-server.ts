import { createHash, randomBytes } from 'node:crypto';
import { mkdir, open, readFile, rename, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { Agent, type Dispatcher } from 'undici';
import type { BundleSettings } from '../config/config.js';
import { VaultgateError } from '../errors.js';
import type { Logger } from '../log/logger.js';
import { MAX_BUNDLE_BYTES, readArchive, toPolicyBundle } from './bundle.js';
import { BundleDownloadError, PolicyUnavailableError } from './errors.js';
import { oneAtATime, type LivePolicy, type PolicyStatus } from './policy-holder.js';
import { Policy } from './policy.js';
import { verificationKey, verifyBundle, type BundleVerifier } from './signature.js';

/** Where the last good bundle is kept, in VAULTGATE_POLICY_BUNDLE_DIR. */
export const KEPT_BUNDLE = 'bundle.tar.gz';
/** One poll's whole exchange with the bundle server, headers and body. */
const REQUEST_TIMEOUT_MS = 30_000;
/** Redirects followed; the bearer token never goes to another origin, and none from https:// to http://. */
const MAX_REDIRECTS = 3;
const REDIRECT_STATUSES = new Set([301, 302, 303, 307, 308]);

/** What one poll came to; counted by `vaultgate_policy_bundle_polls_total`. */
export type PollResult = 'activated' | 'not_modified' | 'unchanged' | 'download_failed' | 'refused';

export interface BundleStatus {
  /** Scheme, host and path only: a query string or user info may be a credential. */
  url: string;
  /** The running bundle's ETag, sent as If-None-Match. */
  etag: string | undefined;
  /** SHA-256 of the running bundle's archive. */
  sha256: string | undefined;
  /** Where the running bundle came from: the server, or the copy kept on disk (the server was not reached). */
  from: 'server' | 'disk' | undefined;
  /** The key id its signature was checked with; undefined: no key configured, bundles are not checked. */
  verifiedWith: string | undefined;
  lastPoll: { at: string; result: PollResult } | undefined;
}

export interface BundlePollerOptions {
  settings: BundleSettings;
  logger: Logger;
  /** Told after every poll as a reload (ok, error, unchanged), like a policy directory's reloads. */
  onReload?: (result: 'ok' | 'error' | 'unchanged') => void;
  /** Told what every poll came to. */
  onPoll?: (result: PollResult) => void;
}

/** A URL fit for logs, /policy and `vaultgate check`: a query string or user info may be a credential. */
export const shown = (url: string) => {
  const u = new URL(url);
  return `${u.protocol}//${u.host}${u.pathname}`;
};

const sha256 = (bytes: Buffer) => createHash('sha256').update(bytes).digest('hex');

/**
 * The policy as OPA bundles from a server (OPA's bundle protocol): downloaded,
 * checked (the archive whole, the signature when a key is configured, the Wasm
 * instantiated with its vaultgate/decision entrypoint) and only then activated;
 * polled with If-None-Match at a random wait between the bounds. A failed poll
 * keeps the running bundle. The last good one is kept on disk, so a replica that
 * starts while the server is down still has a policy. Each process polls for
 * itself (cluster workers too): every worker then runs what its own /policy and
 * /readyz report, a replacement worker starts like any other, and the primary
 * loads no Wasm, HTTP client or keys.
 */
export class BundlePoller implements LivePolicy {
  private running: { policy: Policy; etag: string | undefined; sha256: string; from: 'server' | 'disk' } | undefined;
  private lastError: PolicyStatus['lastError'];
  private lastPoll: BundleStatus['lastPoll'];
  private timer: NodeJS.Timeout | undefined;
  private readonly closing = new AbortController();
  /** Polls now (SIGHUP, the timer); concurrent calls collapse into one more poll after the current one. */
  readonly reload = oneAtATime(() => this.poll());

  /** The bundle's URL as logs and /policy show it. */
  private readonly url: string;

  private constructor(
    private readonly options: BundlePollerOptions,
    private readonly verifier: BundleVerifier | undefined,
    private readonly dispatcher: Dispatcher,
  ) {
    this.url = shown(options.settings.url);
  }

  /**
   * Reads the key and CA (a bad one stops the start), then polls once; when that
   * brings no bundle, the one kept on disk. Without either it still starts, not
   * ready, and the polls go on.
   */
  static async start(options: BundlePollerOptions): Promise<BundlePoller> {
    const { settings, logger } = options;
    const v = settings.verification;
    const verifier = v
      ? {
          key: verificationKey(
            await readSetting(v.keyFile, 'VAULTGATE_POLICY_VERIFICATION_KEY'),
            v.algorithm,
            'VAULTGATE_POLICY_VERIFICATION_KEY',
          ),
          keyId: v.keyId,
          algorithm: v.algorithm,
          scope: v.scope,
        }
      : undefined;
    const ca = settings.caFile ? await readSetting(settings.caFile, 'VAULTGATE_POLICY_BUNDLE_CA_FILE') : undefined;
    const dispatcher = new Agent({ connect: ca ? { ca } : {} });
    const poller = new BundlePoller(options, verifier, dispatcher);
    await poller.reload();
    if (!poller.running) await poller.loadKept();
    if (!poller.running) {
      logger.error(
        { url: poller.url, error: poller.lastError?.message },
        'no policy: the bundle server gave no usable bundle and none is kept on disk; not ready until one arrives',
      );
    }
    return poller;
  }

  get loaded(): boolean {
    return this.running !== undefined;
  }

  get current(): Policy {
    if (!this.running) {
      throw new PolicyUnavailableError(`no policy yet: ${this.lastError?.message ?? `no bundle from ${this.url}`}`);
    }
    return this.running.policy;
  }

  status(): PolicyStatus & { bundle: BundleStatus } {
    const running = this.running;
    return {
      revision: running?.policy.revision,
      source: 'bundle',
      loadedAt: running?.policy.loadedAt.toISOString(),
      lastError: this.lastError,
      bundle: {
        url: this.url,
        etag: running?.etag,
        sha256: running?.sha256,
        from: running?.from,
        verifiedWith: this.verifier?.keyId,
        lastPoll: this.lastPoll,
      },
    };
  }

  /** Polls from now on, each wait drawn between the bounds so a fleet's polls spread out. */
  watch(): Promise<void> {
    const { pollMinSeconds: min, pollMaxSeconds: max } = this.options.settings;
    const schedule = () => {
      if (this.closing.signal.aborted) return;
      const seconds = min + Math.random() * (max - min);
      this.timer = setTimeout(() => void this.reload().finally(schedule), seconds * 1000);
      this.timer.unref();
    };
    if (!this.timer) schedule();
    return Promise.resolve();
  }

  close(): void {
    clearTimeout(this.timer);
    this.closing.abort();
    void this.dispatcher.close().catch(() => undefined);
  }

  private async poll(): Promise<void> {
    let answer: { archive: Buffer; etag: string | undefined } | 'not_modified';
    try {
      answer = await this.download();
    } catch (err) {
      if (!this.closing.signal.aborted) this.polled('download_failed', err as Error);
      return;
    }
    if (answer === 'not_modified') return this.polled('not_modified');
    const digest = sha256(answer.archive);
    if (this.running?.sha256 === digest) {
      Object.assign(this.running, { etag: answer.etag, from: 'server' });
      return this.polled('unchanged');
    }
    try {
      await this.activate(answer.archive, digest, answer.etag, 'server');
    } catch (err) {
      return this.polled('refused', err as Error);
    }
    this.polled('activated');
    await this.keep(answer.archive);
  }

  /** Records what a poll came to, and tells the listeners; a failure keeps the running bundle. */
  private polled(result: PollResult, err?: Error): void {
    const { logger, onReload, onPoll } = this.options;
    this.lastPoll = { at: new Date().toISOString(), result };
    if (err) {
      this.lastError = { message: err.message, at: this.lastPoll.at };
      logger.error(
        { url: this.url, error: err.message, revision: this.running?.policy.revision },
        `policy bundle ${result === 'refused' ? 'refused' : 'download failed'}; the running policy stays`,
      );
    } else {
      // The server answered with a bundle that runs: whatever went wrong before is over.
      this.lastError = undefined;
    }
    onPoll?.(result);
    onReload?.(err ? 'error' : result === 'activated' ? 'ok' : 'unchanged');
  }

  /** GET the bundle: `not_modified` on a 304 to the running bundle's ETag. */
  private async download(): Promise<{ archive: Buffer; etag: string | undefined } | 'not_modified'> {
    const { settings } = this.options;
    const headers: Record<string, string> = {};
    if (settings.tokenFile) {
      // Read at every poll, so a rotated token is used; never logged.
      const token = (await readSetting(settings.tokenFile, 'VAULTGATE_POLICY_BUNDLE_TOKEN_FILE'))
        .toString('utf8')
        .trim();
      if (!token) throw new BundleDownloadError('VAULTGATE_POLICY_BUNDLE_TOKEN_FILE is empty');
      headers.authorization = `Bearer ${token}`;
    }
    if (this.running?.etag) headers['if-none-match'] = this.running.etag;
    const signal = AbortSignal.any([this.closing.signal, AbortSignal.timeout(REQUEST_TIMEOUT_MS)]);
    const fail = (why: string, cause?: unknown) => new BundleDownloadError(`GET ${this.url}: ${why}`, { cause });
    // Redirects by hand, not undici's interceptor: it would follow https:// to http://, where an
    // unsigned bundle can be replaced on the way.
    let target = new URL(settings.url);
    let response: Dispatcher.ResponseData;
    for (let hops = 0; ; hops++) {
      try {
        response = await this.dispatcher.request({ ...requestTarget(target.href), method: 'GET', headers, signal });
      } catch (err) {
        throw fail(signal.aborted ? `no answer within ${REQUEST_TIMEOUT_MS} ms` : (err as Error).message, err);
      }
      const { location } = response.headers;
      if (!REDIRECT_STATUSES.has(response.statusCode) || typeof location !== 'string') break;
      await response.body.dump();
      if (hops === MAX_REDIRECTS) throw fail(`more than ${MAX_REDIRECTS} redirects`);
      const next = new URL(location, target);
      if (next.protocol !== 'https:' && (next.protocol !== 'http:' || target.protocol === 'https:')) {
        throw fail(`redirected to ${shown(next.href)}, not followed: a bundle leaves https:// for nothing less`);
      }
      // The token is for the configured server alone.
      if (next.origin !== target.origin) delete headers.authorization;
      target = next;
    }
    const { statusCode, body } = response;
    if (statusCode === 304) {
      await body.dump();
      return 'not_modified';
    }
    if (statusCode !== 200) {
      await body.dump();
      throw fail(`HTTP ${statusCode}`);
    }
    if (Number(response.headers['content-length'] ?? 0) > MAX_BUNDLE_BYTES) {
      await body.dump();
      throw fail(`the bundle is over ${MAX_BUNDLE_BYTES} bytes`);
    }
    const chunks: Buffer[] = [];
    let size = 0;
    try {
      for await (const chunk of body) {
        size += (chunk as Buffer).length;
        if (size > MAX_BUNDLE_BYTES) {
          body.destroy();
          throw fail(`the bundle is over ${MAX_BUNDLE_BYTES} bytes`);
        }
        chunks.push(chunk as Buffer);
      }
    } catch (err) {
      if (err instanceof BundleDownloadError) throw err;
      throw fail(`the answer broke off: ${(err as Error).message}`, err);
    }
    const etag = response.headers.etag;
    return { archive: Buffer.concat(chunks), etag: typeof etag === 'string' ? etag : undefined };
  }

  /** Checks a bundle whole, and only then swaps it in (between requests: evaluation is synchronous). */
  private async activate(
    archive: Buffer,
    digest: string,
    etag: string | undefined,
    from: 'server' | 'disk',
  ): Promise<void> {
    const files = await readArchive(archive);
    if (this.verifier) await verifyBundle(files, this.verifier);
    const policy = await Policy.load(toPolicyBundle(files));
    this.running = { policy, etag, sha256: digest, from };
    // Each cluster worker polls and activates for itself: the pid says which one this was.
    this.options.logger.info(
      {
        revision: policy.revision,
        from,
        url: this.url,
        signed: Boolean(this.verifier),
        pid: process.pid,
      },
      'policy bundle activated',
    );
  }

  /** At start, when the server gave nothing usable: the bundle kept on disk, checked like a download. */
  private async loadKept(): Promise<void> {
    const dir = this.options.settings.dir;
    if (!dir) return;
    const file = join(dir, KEPT_BUNDLE);
    const archive = await readFile(file).catch(() => undefined);
    if (!archive) return;
    try {
      // No ETag: the next poll downloads the server's bundle whole, whatever it is.
      // The server's failure stays in lastError until a poll succeeds.
      await this.activate(archive, sha256(archive), undefined, 'disk');
    } catch (err) {
      this.options.logger.error({ file, error: (err as Error).message }, 'the policy bundle kept on disk is refused');
    }
  }

  /** Keeps the bundle for the next start: a new file renamed over the old, so a crash never leaves half of one. */
  private async keep(archive: Buffer): Promise<void> {
    const dir = this.options.settings.dir;
    if (!dir) return;
    const temporary = join(dir, `.${KEPT_BUNDLE}.${process.pid}.${randomBytes(6).toString('hex')}.tmp`);
    try {
      await mkdir(dir, { recursive: true });
      const handle = await open(temporary, 'w', 0o600);
      try {
        await handle.writeFile(archive);
        await handle.sync();
      } finally {
        await handle.close();
      }
      await rename(temporary, join(dir, KEPT_BUNDLE));
    } catch (err) {
      await rm(temporary, { force: true });
      this.options.logger.error(
        { dir, error: (err as Error).message },
        'the policy bundle could not be kept on disk (VAULTGATE_POLICY_BUNDLE_DIR)',
      );
    }
  }
}

/** undici's request target for a URL: origin and path with its query. */
function requestTarget(url: string): { origin: string; path: string } {
  const u = new URL(url);
  return { origin: u.origin, path: `${u.pathname}${u.search}` };
}

/** A file a setting names; a failure names the setting. */
async function readSetting(file: string, variable: string): Promise<Buffer> {
  try {
    return await readFile(file);
  } catch (err) {
    throw new VaultgateError(
      'ERR_POLICY_BUNDLE_SETTING',
      `${variable}: cannot read ${file}: ${(err as Error).message}`,
      { cause: err },
    );
  }
}
