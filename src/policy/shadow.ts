import type { Decision } from './policy.js';

/** How a shadow policy's decision differs from the live one; names and references only. */
export interface DecisionDiff {
  allowFlipped: boolean;
  /** Keys only the shadow grants. */
  added: string[];
  /** Keys only the live policy grants. */
  removed: string[];
  /** Keys both grant, from different references. */
  changed: string[];
}

/** Undefined when both decisions are the same. */
export function diffDecisions(live: Decision, shadow: Decision): DecisionDiff | undefined {
  // Own keys only: a key named `constructor` is not "in" every object.
  const added = Object.keys(shadow.secrets)
    .filter((k) => !Object.hasOwn(live.secrets, k))
    .sort();
  const removed = Object.keys(live.secrets)
    .filter((k) => !Object.hasOwn(shadow.secrets, k))
    .sort();
  const changed = Object.keys(live.secrets)
    .filter((k) => Object.hasOwn(shadow.secrets, k) && live.secrets[k] !== shadow.secrets[k])
    .sort();
  const allowFlipped = live.allow !== shadow.allow;
  if (!allowFlipped && added.length === 0 && removed.length === 0 && changed.length === 0) return undefined;
  return { allowFlipped, added, removed, changed };
}
