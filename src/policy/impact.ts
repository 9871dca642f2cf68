import type { Decision } from './policy.js';
import { diffDecisions } from './shadow.js';

/**
 * The kinds of change a candidate policy can make to one step's decision, in the
 * order a report lists them. A step whose allow flips is counted as the flip
 * only, not also as every key it gains or loses.
 */
export const CHANGE_KINDS = ['allow-to-deny', 'deny-to-allow', 'removed', 'added', 'repointed', 'error'] as const;
export type ChangeKind = (typeof CHANGE_KINDS)[number];

/** What one policy made of one input: a decision, or the failure a request would have met (`500 policy_error`). */
export type Outcome = { decision: Decision } | { error: string };

/** Enough to find a step again: its line in the log, and its claims that Bitbucket shows. */
export interface StepExample {
  line: number;
  decisionId: string;
  stepUuid?: string;
  pipelineUuid?: string;
  branchName?: string;
  deploymentEnvironmentUuid?: string;
}

export interface ReplayedStep {
  repository: string;
  /** Counted once however often it asked (a runner asks again after a 503's Retry-After). */
  step: string;
  example: StepExample;
}

/** One difference of one kind, as found on one or more steps of a repository. */
export interface ChangeDetail {
  kind: ChangeKind;
  key?: string;
  /** The reference the baseline granted (removed, repointed). */
  from?: string;
  /** The reference the candidate grants (added, repointed). */
  to?: string;
  /** For `error`: which policy failed, and its message. */
  policy?: 'baseline' | 'candidate';
  error?: string;
}

export interface Change extends ChangeDetail {
  /** Distinct steps. */
  steps: number;
  decisions: number;
  /** The first step it was found on. */
  example: StepExample;
}

export interface RepositoryImpact {
  repository: string;
  changes: Change[];
}

export interface ImpactReport {
  decisions: number;
  /** Decisions whose outcome differs. */
  changed: number;
  /** Distinct steps with at least one change of each kind. */
  steps: Record<ChangeKind, number>;
  repositories: RepositoryImpact[];
}

/** How the candidate's outcome for one input differs from the baseline's; empty when it does not. */
export function compareOutcomes(baseline: Outcome, candidate: Outcome): ChangeDetail[] {
  if ('error' in candidate) {
    return 'error' in baseline && baseline.error === candidate.error
      ? []
      : [{ kind: 'error', policy: 'candidate', error: candidate.error }];
  }
  if ('error' in baseline) return [{ kind: 'error', policy: 'baseline', error: baseline.error }];
  const before = baseline.decision;
  const after = candidate.decision;
  const diff = diffDecisions(before, after);
  if (!diff) return [];
  if (diff.allowFlipped) return [{ kind: before.allow ? 'allow-to-deny' : 'deny-to-allow' }];
  return [
    ...diff.removed.map((key): ChangeDetail => ({ kind: 'removed', key, from: before.secrets[key]! })),
    ...diff.added.map((key): ChangeDetail => ({ kind: 'added', key, to: after.secrets[key]! })),
    ...diff.changed.map((key): ChangeDetail => ({
      kind: 'repointed',
      key,
      from: before.secrets[key]!,
      to: after.secrets[key]!,
    })),
  ];
}

interface Group {
  repository: string;
  detail: ChangeDetail;
  steps: Set<string>;
  decisions: number;
  example: StepExample;
}

/** Collects the changes of a replay, grouped by repository and by what changed, with counts and a first example each. */
export class ImpactAnalysis {
  private decisions = 0;
  private changed = 0;
  private readonly groups = new Map<string, Group>();
  private readonly stepsByKind = new Map<ChangeKind, Set<string>>(
    CHANGE_KINDS.map((kind) => [kind, new Set<string>()]),
  );

  record(step: ReplayedStep, baseline: Outcome, candidate: Outcome): void {
    this.decisions++;
    const details = compareOutcomes(baseline, candidate);
    if (details.length === 0) return;
    this.changed++;
    for (const detail of details) {
      const id = JSON.stringify([
        step.repository,
        detail.kind,
        detail.key,
        detail.from,
        detail.to,
        detail.policy,
        detail.error,
      ]);
      let group = this.groups.get(id);
      if (!group) {
        group = { repository: step.repository, detail, steps: new Set(), decisions: 0, example: step.example };
        this.groups.set(id, group);
      }
      group.steps.add(step.step);
      group.decisions++;
      // Step UUIDs are unique across repositories: one set per kind counts the whole log.
      this.stepsByKind.get(detail.kind)!.add(step.step);
    }
  }

  report(): ImpactReport {
    const byRepository = new Map<string, Change[]>();
    for (const group of this.groups.values()) {
      const changes = byRepository.get(group.repository) ?? [];
      changes.push({ ...group.detail, steps: group.steps.size, decisions: group.decisions, example: group.example });
      byRepository.set(group.repository, changes);
    }
    const order = (c: Change) =>
      [CHANGE_KINDS.indexOf(c.kind), c.key ?? '', c.from ?? '', c.to ?? '', c.error ?? ''] as const;
    const compare = (a: Change, b: Change) => {
      const [x, y] = [order(a), order(b)];
      for (let i = 0; i < x.length; i++) if (x[i] !== y[i]) return x[i]! < y[i]! ? -1 : 1;
      return 0;
    };
    return {
      decisions: this.decisions,
      changed: this.changed,
      steps: Object.fromEntries(CHANGE_KINDS.map((kind) => [kind, this.stepsByKind.get(kind)!.size])) as Record<
        ChangeKind,
        number
      >,
      repositories: [...byRepository.entries()]
        .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
        .map(([repository, changes]) => ({ repository, changes: changes.sort(compare) })),
    };
  }
}
