import { ENTRYPOINT } from './bundle.js';
import { DecisionLogError, PolicyOutputError } from './errors.js';
import { toDecision, type Decision, type PolicyInput } from './policy.js';

/**
 * One decision read back from a decision log (`VAULTGATE_DECISION_LOG=true`, in
 * OPA's decision-log shape): what the policy was asked, what it answered, and
 * which revision answered. Claims and references only: the log never holds values.
 */
export interface LoggedDecision {
  /** Where it was read, 1-based. */
  line: number;
  decisionId: string;
  input: PolicyInput;
  result: Decision;
  /** `bundles.vaultgate.revision`; empty when the line has none. */
  revision: string;
  /** The whole line as parsed, to write it back with another result. */
  entry: Record<string, unknown>;
}

const isObject = (value: unknown): value is Record<string, unknown> =>
  typeof value === 'object' && value !== null && !Array.isArray(value);

/**
 * Reads one line of a log that may hold anything else a log collector gathered
 * (audit lines, start-up messages, other programs' text). Undefined for a line
 * that is not a decision of vaultgate's entrypoint. A line that is broken JSON,
 * or says it is a decision and is not a valid one, is an error naming the file
 * and line: replaying around it would report a change that is not there.
 */
export function parseDecisionLine(text: string, file: string, line: number): LoggedDecision | undefined {
  const trimmed = text.trim();
  if (!trimmed.startsWith('{')) return undefined;
  const where = `${file}:${line}`;
  let entry: unknown;
  try {
    entry = JSON.parse(trimmed);
  } catch (err) {
    throw new DecisionLogError(
      `${where}: not a complete JSON line (${(err as Error).message}); a log cut mid-line? remove the line`,
      { cause: err },
    );
  }
  if (!isObject(entry)) return undefined;
  // vaultgate's lines say so in `msg`; OPA's own decision logs carry a decision_id and a path.
  const isDecision =
    entry.msg === 'decision log' || (typeof entry.decision_id === 'string' && typeof entry.path === 'string');
  if (!isDecision || entry.path !== ENTRYPOINT) return undefined;
  if (typeof entry.decision_id !== 'string') throw new DecisionLogError(`${where}: the decision has no decision_id`);
  const input = entry.input;
  if (!isObject(input) || !isObject(input.claims))
    throw new DecisionLogError(`${where}: the decision's input.claims is not an object`);
  let result: Decision;
  try {
    // OPA leaves `result` out when the policy decided nothing: a deny, as when serving.
    result = toDecision(entry.result);
  } catch (err) {
    if (!(err instanceof PolicyOutputError)) throw err;
    throw new DecisionLogError(`${where}: ${err.message.replace(/^decision/, 'result')}`, { cause: err });
  }
  const bundles = isObject(entry.bundles) && isObject(entry.bundles.vaultgate) ? entry.bundles.vaultgate : {};
  return {
    line,
    decisionId: entry.decision_id,
    input: input as unknown as PolicyInput,
    result,
    revision: typeof bundles.revision === 'string' ? bundles.revision : '',
    entry,
  };
}

/** What a decision log line says of a decision and the policy that made it: references only, never reasons or values. */
export function decisionFields(decision: Decision, revision: string) {
  return {
    result: { allow: decision.allow, secrets: decision.secrets },
    bundles: { vaultgate: { revision } },
  };
}

/**
 * The line again with another policy's answer in it, as that policy would have
 * logged it (decisionFields, as the decider writes them); the rest (input,
 * decision_id, time) as it was.
 */
export function rewriteDecisionLine(logged: LoggedDecision, decision: Decision, revision: string): string {
  const bundles = isObject(logged.entry.bundles) ? logged.entry.bundles : {};
  const fields = decisionFields(decision, revision);
  return JSON.stringify({ ...logged.entry, result: fields.result, bundles: { ...bundles, ...fields.bundles } });
}
