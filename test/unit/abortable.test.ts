import test from 'ava';
import { deadlineSignal, untilAborted } from '../../src/util/abortable.js';

test('the promise settles first: its value or its failure, as it is', async (t) => {
  const signal = new AbortController().signal;
  t.is(await untilAborted(Promise.resolve(7), signal), 7);
  const failure = new Error('refused');
  t.is(await t.throwsAsync(untilAborted(Promise.reject(failure), signal)), failure);
});

test("the signal aborts first: the wait ends with the signal's reason, and a later failure is no unhandled rejection", async (t) => {
  const controller = new AbortController();
  let fail!: (err: Error) => void;
  const work = new Promise<number>((_, reject) => (fail = reject));
  const waiting = untilAborted(work, controller.signal);
  const reason = new Error('given up');
  controller.abort(reason);
  t.is(await t.throwsAsync(waiting), reason);
  fail(new Error('too late'));
  await new Promise((r) => setImmediate(r));
});

test('a signal already aborted ends the wait at once', async (t) => {
  const never = new Promise<number>(() => undefined);
  const error = await t.throwsAsync(untilAborted(never, AbortSignal.abort(new Error('already'))));
  t.is(error.message, 'already');
});

test('AbortSignal.timeout ends the wait with its TimeoutError', async (t) => {
  const never = new Promise<number>(() => undefined);
  // AbortSignal.timeout's timer is unref'd: alone in this worker it would let the event loop
  // end before it fires (callers have sockets open). This timer keeps the loop alive meanwhile.
  const alive = setTimeout(() => undefined, 5000);
  // A DOMException, which is no Error instance on Node 20.
  const error = await t.throwsAsync(untilAborted(never, AbortSignal.timeout(10)), { any: true });
  clearTimeout(alive);
  t.is((error as DOMException).name, 'TimeoutError');
});

test("onAbort's error, not the signal's reason, when one is given", async (t) => {
  const controller = new AbortController();
  const waiting = untilAborted(new Promise<number>(() => undefined), controller.signal, () => new Error('late'));
  controller.abort(new Error('reason'));
  t.is((await t.throwsAsync(waiting)).message, 'late');
});

test('a deadline signal aborts with a TimeoutError after its time, and never once cleared', async (t) => {
  const alive = setTimeout(() => undefined, 5000);
  const cleared = deadlineSignal(5);
  cleared.clear();
  // Timers fire in the order of their times: by the time this one has, the cleared one would have.
  const fired = deadlineSignal(30);
  const error = await t.throwsAsync(untilAborted(new Promise<number>(() => undefined), fired.signal), { any: true });
  t.is((error as DOMException).name, 'TimeoutError');
  t.false(cleared.signal.aborted);
  clearTimeout(alive);
});
