import { addAbortListener, setMaxListeners } from 'node:events';

/**
 * `work`, or a rejection as soon as `signal` aborts, whichever comes first: with `onAbort()`'s
 * error, or the signal's reason. For work the signal cannot stop by itself: an ioredis command,
 * or a read shared with other requests (a single flight) that runs on under the first one's
 * signal. The wait ends; the work goes on. Written by hand: Node races a promise with a signal
 * only inside its own APIs.
 */
export function untilAborted<T>(
  work: Promise<T>,
  signal: AbortSignal,
  onAbort: () => unknown = () => signal.reason,
): Promise<T> {
  if (signal.aborted) {
    // Its outcome has nobody to tell.
    work.catch(() => undefined);
    return Promise.reject(onAbort() as Error);
  }
  return new Promise<T>((resolve, reject) => {
    const listener = addAbortListener(signal, () => reject(onAbort() as Error));
    work.then(resolve, reject).finally(() => listener[Symbol.dispose]());
  });
}

/**
 * A signal that aborts with a TimeoutError after `ms`, as AbortSignal.timeout's does, and
 * `clear()` to drop its timer once the work is done. Not AbortSignal.timeout itself: on
 * Node 20 each costs 17–24 µs and keeps its timer and signal alive for the whole `ms` after
 * the request has ended; one per request made a cached step cost about a fifth more CPU
 * (docs/performance.md).
 */
export function deadlineSignal(ms: number): { signal: AbortSignal; clear(): void } {
  const controller = new AbortController();
  // undici and untilAborted each listen on it, once per Vault call: a step granted ten leased
  // secrets would pass Node's default of ten listeners and print a leak warning per request.
  setMaxListeners(0, controller.signal);
  const timer = setTimeout(() => controller.abort(new DOMException(`no answer within ${ms} ms`, 'TimeoutError')), ms);
  timer.unref();
  return { signal: controller.signal, clear: () => clearTimeout(timer) };
}
