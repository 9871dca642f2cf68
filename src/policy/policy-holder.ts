import { watch, type FSWatcher } from 'node:fs';
import type { Logger } from '../log/logger.js';
import { loadBundle, policyTree, type LoadBundleResult } from './bundle.js';
import { Policy } from './policy.js';

export interface PolicyHolderOptions {
  dir: string;
  opaPath: string;
  logger: Logger;
  /** Told after every reload attempt (for metrics). */
  onReload?: (result: 'ok' | 'error' | 'unchanged') => void;
}

export interface PolicyStatus {
  /** The running policy's revision (a bundle's: its manifest's); undefined while there is none. */
  revision: string | undefined;
  /** Compiled from the sources now, a prebuilt bundle taken on its declared revision (no OPA), or a bundle from a server. */
  source: LoadBundleResult['source'] | 'bundle';
  loadedAt: string | undefined;
  lastError: { message: string; at: string } | undefined;
}

/** The policy requests are decided by, wherever it comes from, and how it follows changes. */
export interface LivePolicy {
  /** The running policy; throws PolicyUnavailableError while there is none. */
  readonly current: Policy;
  /** Whether there is a policy to decide with: without one, the replica is not ready. */
  readonly loaded: boolean;
  status(): PolicyStatus;
  /** Looks for a new policy now (SIGHUP); a failure keeps the running one. */
  reload(): Promise<void>;
  /** Follows changes from now on. */
  watch(): Promise<void>;
  close(): void;
}

/**
 * `run`, never twice at once: a call while it runs asks for one more run after it,
 * and any number of such calls collapse into that one.
 */
export function oneAtATime(run: () => Promise<void>): () => Promise<void> {
  let running: Promise<void> | undefined;
  let again = false;
  const call = (): Promise<void> => {
    if (running) {
      again = true;
      return running;
    }
    running = run().finally(() => {
      running = undefined;
      if (again) {
        again = false;
        void call();
      }
    });
    return running;
  };
  return call;
}

/**
 * The policy directory's running policy and its reloads. A new policy replaces the running one in
 * one assignment, between requests (evaluation is synchronous); one that fails
 * to compile or load never does: the last good policy keeps serving.
 */
export class PolicyHolder implements LivePolicy {
  private lastError: PolicyStatus['lastError'];
  readonly loaded = true;
  /** Recompiles and swaps; concurrent calls collapse into one more run after the current one. */
  readonly reload = oneAtATime(() => this.reloadOnce());
  /** One watcher per directory the policy is read from (fs.watch is not recursive on every platform). */
  private readonly watchers = new Map<string, FSWatcher>();
  private watching = false;
  private debounce: NodeJS.Timeout | undefined;

  private constructor(
    private running: Policy,
    private source: LoadBundleResult['source'],
    private readonly options: PolicyHolderOptions,
  ) {}

  static async load(options: PolicyHolderOptions): Promise<PolicyHolder> {
    const { bundle, source } = await loadBundle(options.dir, options.opaPath);
    const policy = await Policy.load(bundle);
    options.logger.info({ dir: options.dir, revision: policy.revision, source }, 'policy loaded');
    return new PolicyHolder(policy, source, options);
  }

  get current(): Policy {
    return this.running;
  }

  status(): PolicyStatus {
    return {
      revision: this.running.revision,
      source: this.source,
      loadedAt: this.running.loadedAt.toISOString(),
      lastError: this.lastError,
    };
  }

  /** Reloads shortly after anything in the policy directory, or a directory below it, changes (editors write in several steps). */
  watch(): Promise<void> {
    this.watching = true;
    return this.watchTree();
  }

  close(): void {
    this.watching = false;
    clearTimeout(this.debounce);
    for (const watcher of this.watchers.values()) watcher.close();
    this.watchers.clear();
  }

  /** Watches every directory the sources are read from, as they are now: called again after each reload. */
  private async watchTree(): Promise<void> {
    let directories: string[];
    try {
      directories = (await policyTree(this.options.dir)).directories;
    } catch (err) {
      this.options.logger.error({ error: (err as Error).message }, 'policy directory watch failed');
      return;
    }
    if (!this.watching) return;
    for (const [dir, watcher] of this.watchers) {
      if (directories.includes(dir)) continue;
      watcher.close();
      this.watchers.delete(dir);
    }
    for (const dir of directories) {
      if (this.watchers.has(dir)) continue;
      try {
        const watcher = watch(dir, () => {
          clearTimeout(this.debounce);
          this.debounce = setTimeout(() => void this.reload(), 200);
        });
        watcher.on('error', (err) =>
          this.options.logger.error({ error: err.message, dir }, 'policy directory watch failed'),
        );
        this.watchers.set(dir, watcher);
      } catch (err) {
        this.options.logger.error({ error: (err as Error).message, dir }, 'policy directory watch failed');
      }
    }
  }

  private async reloadOnce(): Promise<void> {
    const { logger, onReload } = this.options;
    try {
      // First, so a directory added by this change is watched even when the change does not compile.
      if (this.watching) await this.watchTree();
      const { bundle, source } = await loadBundle(this.options.dir, this.options.opaPath);
      if (bundle.revision === this.running.revision) {
        // The directory is back to what runs (a broken edit undone): nothing is wrong any more.
        this.lastError = undefined;
        onReload?.('unchanged');
        return;
      }
      const next = await Policy.load(bundle);
      this.running = next;
      this.source = source;
      this.lastError = undefined;
      logger.info({ revision: next.revision }, 'policy reloaded');
      onReload?.('ok');
    } catch (err) {
      this.lastError = { message: (err as Error).message, at: new Date().toISOString() };
      logger.error(
        { error: (err as Error).message, revision: this.running.revision },
        'policy reload failed; the running policy stays',
      );
      onReload?.('error');
    }
  }
}
