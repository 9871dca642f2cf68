/**
 * `promise`, or a rejection with the signal's reason as soon as `signal` aborts. For waits on
 * work that takes no AbortSignal (an ioredis command): the wait ends, the work itself goes on.
 * Written by hand: neither Node nor a dependency races a promise against a signal.
 */
export function untilAborted<T>(promise: Promise<T>, signal: AbortSignal): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const abort = () => reject(signal.reason as Error);
    if (signal.aborted) abort();
    else signal.addEventListener('abort', abort, { once: true });
    promise.then(resolve, reject).finally(() => signal.removeEventListener('abort', abort));
  });
}
