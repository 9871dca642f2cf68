/**
 * One promise per key while it is pending: callers asking for the same key meanwhile
 * share it (and its failure), and the next call after it settles starts afresh.
 * Written by hand: the libraries that do this carry caching and eviction policies
 * vaultgate keeps elsewhere, and this is the whole of what is needed.
 */
export class SingleFlight<K, V> {
  private readonly flights = new Map<K, Promise<V>>();

  /** The pending promise for `key`, or `work()` started now and shared until it settles. */
  run(key: K, work: () => Promise<V>): Promise<V> {
    const pending = this.flights.get(key);
    if (pending) return pending;
    const flight = work().finally(() => {
      if (this.flights.get(key) === flight) this.flights.delete(key);
    });
    this.flights.set(key, flight);
    return flight;
  }

  /** Whether a flight for `key` is pending. */
  has(key: K): boolean {
    return this.flights.has(key);
  }
}
