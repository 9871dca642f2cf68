import { Counter, Gauge, Histogram, Registry } from 'prom-client';

/** Buckets for request-sized latencies, 1 ms to 5 s. */
const LATENCY_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5];

/** vaultgate's Prometheus metrics, on a registry of its own. */
export function createMetrics() {
  const registry = new Registry();
  const counter = <L extends string>(name: string, help: string, label: L) =>
    new Counter({ name, help, labelNames: [label] as const, registers: [registry] });
  const histogram = <L extends string>(name: string, help: string, label: L | undefined, buckets: number[]) =>
    new Histogram({ name, help, labelNames: label ? ([label] as const) : [], buckets, registers: [registry] });
  return {
    registry,
    requests: counter('vaultgate_secrets_requests_total', 'Secret requests by HTTP status', 'status'),
    duration: histogram(
      'vaultgate_secrets_request_duration_seconds',
      'Secret request latency by HTTP status',
      'status',
      LATENCY_BUCKETS,
    ),
    cacheLookups: counter('vaultgate_cache_lookups_total', 'Secret cache lookups by result', 'result'),
    cacheErrors: counter(
      'vaultgate_cache_errors_total',
      'Cache failures that were bypassed, by operation',
      'operation',
    ),
    staleServed: new Counter({
      name: 'vaultgate_cache_stale_served_total',
      help: 'KV values served past their cache TTL because Vault could not answer (VAULTGATE_CACHE_STALE_IF_ERROR)',
      registers: [registry],
    }),
    sharedReads: counter(
      'vaultgate_cache_shared_reads_total',
      'Uncached KV reads under the cross-replica lock, by outcome (read: this replica read Vault; waited: another one did; took_over: the holder did not finish in time)',
      'outcome',
    ),
    policyEvaluation: histogram(
      'vaultgate_policy_evaluation_seconds',
      'Time to evaluate the live policy for one request',
      undefined,
      [0.00001, 0.000025, 0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.005],
    ),
    policyReloads: counter(
      'vaultgate_policy_reloads_total',
      'Policy reload attempts by result (ok, error, unchanged)',
      'result',
    ),
    policyBundlePolls: counter(
      'vaultgate_policy_bundle_polls_total',
      'Polls of the policy bundle server by result (activated, not_modified, unchanged, download_failed, refused)',
      'result',
    ),
    shadowDiffs: counter(
      'vaultgate_shadow_decisions_total',
      'Shadow policy evaluations by outcome (same, differs, allow_flip, error)',
      'outcome',
    ),
    vaultRequests: histogram(
      'vaultgate_vault_request_duration_seconds',
      'Vault API calls by outcome (ok, error: Vault refused, unavailable: no answer)',
      'outcome',
      LATENCY_BUCKETS,
    ),
    // Set by each readiness check. Across cluster workers the lowest value: down if any worker saw it down.
    dependencyUp: new Gauge({
      name: 'vaultgate_dependency_up',
      help: 'Whether a dependency answered the last readiness check (1) or not (0), by dependency (vault, redis when configured)',
      labelNames: ['dependency'] as const,
      aggregator: 'min',
      registers: [registry],
    }),
    jwksFetches: counter('vaultgate_jwks_fetches_total', 'Issuer key set fetches by result', 'result'),
  };
}

export type Metrics = ReturnType<typeof createMetrics>;
