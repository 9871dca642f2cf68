import { watch, type FSWatcher } from 'node:fs';
import type { Logger } from '../log/logger.js';
import { loadBundle } from './bundle.js';
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
  private watcher: FSWatcher | undefined;
  private debounce: NodeJS.Timeout | undefined;

  private constructor(
    private running: Policy,
    private readonly options: PolicyHolderOptions,
  ) {}

  static async load(options: PolicyHolderOptions): Promise<PolicyHolder> {
    const { bundle, source } = await loadBundle(options.dir, options.opaPath);
    const policy = await Policy.load(bundle);
    options.logger.info({ dir: options.dir, revision: policy.revision, source }, 'policy loaded');
    return new PolicyHolder(policy, options);
  }

  get current(): Policy {
    return this.running;
  }

  status(): PolicyStatus {
    return { revision: this.running.revision, loadedAt: this.running.loadedAt.toISOString(), lastError: this.lastError };
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

  /** Reloads shortly after the policy directory changes (editors write in several steps). */
  watch(): void {
    this.watcher = watch(this.options.dir, () => {
      clearTimeout(this.debounce);
      this.debounce = setTimeout(() => void this.reload(), 200);
    });
    this.watcher.on('error', (err) => this.options.logger.error({ error: err.message }, 'policy directory watch failed'));
  }

  close(): void {
    clearTimeout(this.debounce);
    this.watcher?.close();
  }

  private async reloadOnce(): Promise<void> {
    const { logger, onReload } = this.options;
    try {
      const { bundle } = await loadBundle(this.options.dir, this.options.opaPath);
      if (bundle.revision === this.running.revision) {
        // The directory is back to what runs (a broken edit undone): nothing is wrong any more.
        this.lastError = undefined;
        onReload?.('unchanged');
        return;
      }
      const next = await Policy.load(bundle);
      this.running = next;
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
