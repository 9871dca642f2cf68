import { Counter, Histogram, Registry } from 'prom-client';

/** vaultgate's Prometheus metrics, on a registry of its own. */
export function createMetrics() {
  const registry = new Registry();
  return {
    registry,
    requests: new Counter({
      name: 'vaultgate_secrets_requests_total',
      help: 'Secret requests by HTTP status',
      labelNames: ['status'] as const,
      registers: [registry],
    }),
    duration: new Histogram({
      name: 'vaultgate_secrets_request_duration_seconds',
      help: 'Secret request latency by HTTP status',
      labelNames: ['status'] as const,
      buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
      registers: [registry],
    }),
    cacheLookups: new Counter({
      name: 'vaultgate_cache_lookups_total',
      help: 'Secret cache lookups by result',
      labelNames: ['result'] as const,
      registers: [registry],
    }),
    policyReloads: new Counter({
      name: 'vaultgate_policy_reloads_total',
      help: 'Policy reload attempts by result (ok, error, unchanged)',
      labelNames: ['result'] as const,
      registers: [registry],
    }),
    shadowDiffs: new Counter({
      name: 'vaultgate_shadow_decisions_total',
      help: 'Shadow policy evaluations by outcome (same, differs, allow_flip, error)',
      labelNames: ['outcome'] as const,
      registers: [registry],
    }),
    cacheErrors: new Counter({
      name: 'vaultgate_cache_errors_total',
      help: 'Cache failures that were bypassed, by operation',
      labelNames: ['operation'] as const,
      registers: [registry],
    }),
  };
}

export type Metrics = ReturnType<typeof createMetrics>;
