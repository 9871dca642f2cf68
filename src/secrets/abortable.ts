import { addAbortListener } from 'node:events';

/**
 * `work`, or `onAbort()`'s error as soon as `signal` aborts, whichever comes first: for work the
 * signal cannot stop by itself, such as a read shared with other requests (a single flight) that
 * runs on under the first one's signal. Written by hand: Node races a promise with a signal only
 * for its own APIs; addAbortListener is the documented way to listen, and the listener goes
 * with the work.
 */
export function untilAborted<T>(work: Promise<T>, signal: AbortSignal, onAbort: () => Error): Promise<T> {
  if (signal.aborted) {
    // Its outcome has nobody to tell.
    work.catch(() => undefined);
    return Promise.reject(onAbort());
  }
  return new Promise<T>((resolve, reject) => {
    const listener = addAbortListener(signal, () => reject(onAbort()));
    work.then(resolve, reject).finally(() => listener[Symbol.dispose]());
  });
}
