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
    policyEvaluation: new Histogram({
      name: 'vaultgate_policy_evaluation_seconds',
      help: 'Time to evaluate the live policy for one request',
      buckets: [0.00001, 0.000025, 0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.005],
      registers: [registry],
    }),
    vaultRequests: new Histogram({
      name: 'vaultgate_vault_request_duration_seconds',
      help: 'Vault API calls by outcome (ok, error: Vault refused, unavailable: no answer)',
      labelNames: ['outcome'] as const,
      buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
      registers: [registry],
    }),
    jwksFetches: new Counter({
      name: 'vaultgate_jwks_fetches_total',
      help: 'Issuer key set fetches by result',
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
