import { loadPolicy, type LoadedPolicy } from '@open-policy-agent/opa-wasm';
import { ENTRYPOINT, type PolicyBundle } from './bundle.js';
import { PolicyBuildError, PolicyOutputError } from './errors.js';

/** What the policy sees: the verified claims and a little about the request. */
export interface PolicyInput {
  claims: Record<string, unknown>;
  request: { method: string; path: string; remoteAddr: string; time: string };
}

/** What the policy decides: whether the step may have secrets, and which, by environment variable name. */
export interface Decision {
  allow: boolean;
  /** Environment variable name → Vault reference (`mount/path#field`). */
  secrets: Record<string, string>;
  /** Optional: environment variable name → why the policy granted it (shown by `vaultgate policy eval`). */
  reasons?: Record<string, string>;
}

const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;

/** Checks a raw policy result against the decision contract. */
export function toDecision(result: unknown): Decision {
  // No result at all means no rule matched: OPA's default deny.
  if (result === undefined) return { allow: false, secrets: Object.create(null) };
  if (typeof result !== 'object' || result === null || Array.isArray(result)) {
    throw new PolicyOutputError('decision is not an object');
  }
  const { allow, secrets = {}, reasons } = result as Record<string, unknown>;
  if (typeof allow !== 'boolean') throw new PolicyOutputError('decision.allow is not a boolean');
  if (typeof secrets !== 'object' || secrets === null || Array.isArray(secrets)) {
    throw new PolicyOutputError('decision.secrets is not an object');
  }
  // No prototype: `constructor` or `toString` are ordinary keys, never inherited members.
  const checked: Record<string, string> = Object.create(null);
  for (const [name, ref] of Object.entries(secrets)) {
    if (!ENV_NAME.test(name)) {
      throw new PolicyOutputError(`decision.secrets key ${JSON.stringify(name)} is not an environment variable name`);
    }
    // Set on a plain object it changes the prototype and the key vanishes; refused rather than trusted to every reader.
    if (name === '__proto__') {
      throw new PolicyOutputError('decision.secrets key __proto__ is refused');
    }
    if (name.toUpperCase().startsWith('BITBUCKET_')) {
      throw new PolicyOutputError(`decision.secrets key ${name} uses the reserved BITBUCKET_ prefix`);
    }
    if (typeof ref !== 'string') {
      throw new PolicyOutputError(`decision.secrets.${name} is not a string reference`);
    }
    checked[name] = ref;
  }
  let explained: Record<string, string> | undefined;
  if (reasons && typeof reasons === 'object' && !Array.isArray(reasons)) {
    explained = Object.create(null) as Record<string, string>;
    for (const [name, why] of Object.entries(reasons)) if (typeof why === 'string') explained[name] = why;
  }
  return { allow, secrets: allow ? checked : Object.create(null), ...(explained ? { reasons: explained } : {}) };
}

/** A compiled policy, ready to decide. One Wasm instance, evaluated synchronously. */
export class Policy {
  private constructor(
    private readonly wasm: LoadedPolicy,
    readonly revision: string,
    readonly loadedAt: Date,
  ) {}

  static async load(bundle: PolicyBundle): Promise<Policy> {
    let wasm: LoadedPolicy;
    try {
      wasm = await loadPolicy(bundle.wasm);
      wasm.setData(bundle.data as object);
    } catch (err) {
      throw new PolicyBuildError(
        'the compiled policy does not load',
        String(err instanceof Error ? err.message : err),
        {
          cause: err,
        },
      );
    }
    if (!Object.prototype.hasOwnProperty.call(wasm.entrypoints, ENTRYPOINT)) {
      throw new PolicyBuildError(`the compiled policy has no ${ENTRYPOINT} entrypoint`);
    }
    return new Policy(wasm, bundle.revision, new Date());
  }

  decide(input: PolicyInput): Decision {
    let resultSet: unknown;
    try {
      resultSet = this.wasm.evaluate(input, ENTRYPOINT);
    } catch (err) {
      // opa-wasm throws strings as well as Errors (conflicting rule outputs, for one).
      throw new PolicyOutputError(`policy evaluation failed: ${err instanceof Error ? err.message : String(err)}`, {
        cause: err,
      });
    }
    const first = Array.isArray(resultSet) ? (resultSet[0] as { result?: unknown } | undefined) : undefined;
    return toDecision(first?.result);
  }
}
