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
  revision: string;
  /** Compiled from the sources now, or a prebuilt bundle taken on its declared revision (no OPA). */
  source: LoadBundleResult['source'];
  loadedAt: string;
  lastError: { message: string; at: string } | undefined;
}

/**
 * The running policy and its reloads. A new policy replaces the running one in
 * one assignment, between requests (evaluation is synchronous); one that fails
 * to compile or load never does: the last good policy keeps serving.
 */
export class PolicyHolder {
  private lastError: PolicyStatus['lastError'];
  private reloading: Promise<void> | undefined;
  private again = false;
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
    return { revision: this.running.revision, source: this.source, loadedAt: this.running.loadedAt.toISOString(), lastError: this.lastError };
  }

  /** Recompiles and swaps; concurrent calls collapse into one more run after the current one. */
  reload(): Promise<void> {
    if (this.reloading) {
      this.again = true;
      return this.reloading;
    }
    this.reloading = this.reloadOnce().finally(() => {
      this.reloading = undefined;
      if (this.again) {
        this.again = false;
        void this.reload();
      }
    });
    return this.reloading;
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
        watcher.on('error', (err) => this.options.logger.error({ error: err.message, dir }, 'policy directory watch failed'));
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
      logger.error({ error: (err as Error).message, revision: this.running.revision }, 'policy reload failed; the running policy stays');
      onReload?.('error');
    }
  }
}
