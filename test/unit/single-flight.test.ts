import test from 'ava';
import { SingleFlight } from '../../src/util/single-flight.js';

test('callers of one key share one pending run, and its value', async (t) => {
  const flights = new SingleFlight<string, number>();
  let runs = 0;
  let finish!: (n: number) => void;
  const work = () => {
    runs++;
    return new Promise<number>((resolve) => (finish = resolve));
  };
  const a = flights.run('k', work);
  const b = flights.run('k', work);
  t.true(flights.has('k'));
  finish(7);
  t.deepEqual(await Promise.all([a, b]), [7, 7]);
  t.is(runs, 1);
  t.false(flights.has('k'));
});

test('a failure is shared, and the next call after it runs again', async (t) => {
  const flights = new SingleFlight<string, number>();
  let runs = 0;
  const failing = () => {
    runs++;
    return Promise.reject(new Error('down'));
  };
  const [a, b] = [flights.run('k', failing), flights.run('k', failing)];
  await t.throwsAsync(a, { message: 'down' });
  await t.throwsAsync(b, { message: 'down' });
  t.is(runs, 1);
  t.is(await flights.run('k', () => Promise.resolve(2)), 2);
  t.is(runs, 1);
});

test('different keys run apart', async (t) => {
  const flights = new SingleFlight<string, string>();
  const [a, b] = await Promise.all([
    flights.run('a', () => Promise.resolve('A')),
    flights.run('b', () => Promise.resolve('B')),
  ]);
  t.deepEqual([a, b], ['A', 'B']);
});
