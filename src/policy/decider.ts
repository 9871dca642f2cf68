import type { Logger } from '../log/logger.js';
import { ENTRYPOINT } from './bundle.js';
import { decisionFields } from './decision-log.js';
import type { Decision, PolicyInput } from './policy.js';
import type { LivePolicy } from './policy-holder.js';
import { diffDecisions } from './shadow.js';

export type ShadowOutcome = 'same' | 'differs' | 'allow_flip' | 'error';

export interface DeciderOptions {
  live: LivePolicy;
  /** A candidate policy proven on real traffic: evaluated, compared, never obeyed. */
  shadow?: LivePolicy | undefined;
  logger: Logger;
  /** One OPA-shaped decision log line per decision. */
  decisionLog: boolean;
  onShadow?: (outcome: ShadowOutcome) => void;
  /** Told how long each live evaluation took, in seconds. */
  onEvaluated?: (seconds: number) => void;
}

/** A decision, and the revision of the policy that made it (for the audit line). */
export interface Decided extends Decision {
  revision: string;
}

/** Asks the live policy, and beside it the shadow policy; logs decisions as OPA does. */
export class PolicyDecider {
  constructor(private readonly options: DeciderOptions) {}

  decide(input: PolicyInput, decisionId: string): Decided {
    const { live, shadow, logger } = this.options;
    const policy = live.current;
    const started = process.hrtime.bigint();
    const decision = policy.decide(input);
    const elapsedNs = Number(process.hrtime.bigint() - started);
    this.options.onEvaluated?.(elapsedNs / 1e9);
    if (this.options.decisionLog) {
      // The shape of OPA's decision logs, so tools that read those read these.
      // Input holds the verified claims (never the token); result names references, never values.
      logger.info(
        {
          decision_id: decisionId,
          path: ENTRYPOINT,
          input,
          ...decisionFields(decision, policy.revision),
          metrics: { timer_rego_query_eval_ns: elapsedNs },
          timestamp: new Date().toISOString(),
          labels: { app: 'vaultgate' },
        },
        'decision log',
      );
    }
    if (shadow) this.compareShadow(shadow, input, decision, decisionId);
    return { ...decision, revision: policy.revision };
  }

  private compareShadow(shadow: LivePolicy, input: PolicyInput, live: Decision, decisionId: string): void {
    let outcome: ShadowOutcome;
    try {
      const diff = diffDecisions(live, shadow.current.decide(input));
      outcome = !diff ? 'same' : diff.allowFlipped ? 'allow_flip' : 'differs';
      if (diff) {
        this.options.logger.info(
          { shadow: true, decision_id: decisionId, revision: shadow.current.revision, liveAllow: live.allow, ...diff },
          'shadow policy decides differently',
        );
      }
    } catch (err) {
      outcome = 'error';
      this.options.logger.warn(
        { shadow: true, decision_id: decisionId, error: (err as Error).message },
        'shadow policy failed',
      );
    }
    this.options.onShadow?.(outcome);
  }
}
