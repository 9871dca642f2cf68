import { DEFAULT_POLICY_DIR } from './defaults.js';
import type { BundleSigningAlgorithm, Env } from './variables.js';

/** How bundle signatures are checked, as OPA's --verification-key, --verification-key-id, --signing-alg and --scope. */
export interface BundleVerification {
  /** PEM public key (or certificate), or for HS* the HMAC secret: the file's bytes as they are. */
  keyFile: string;
  /** The key's name: a signature naming another key id is refused. */
  keyId: string;
  algorithm: BundleSigningAlgorithm;
  /** The scope the signature must carry; empty: none. */
  scope: string;
}

/** A policy delivered as OPA bundles from a server (VAULTGATE_POLICY_BUNDLE_URL). */
export interface BundleSettings {
  url: string;
  /** Bounds of the random wait between two polls, in seconds (OPA's min_delay_seconds, max_delay_seconds). */
  pollMinSeconds: number;
  pollMaxSeconds: number;
  /** Sent as `Authorization: Bearer <contents>`; read again at every poll, so a rotated token is used. */
  tokenFile: string | undefined;
  /** PEM of the CA that signed the bundle server's certificate. */
  caFile: string | undefined;
  /** Where the last good bundle is kept, for a start while the server is down. */
  dir: string | undefined;
  /** Set: only bundles signed with this key are activated. */
  verification: BundleVerification | undefined;
}

/** Where the live policy comes from: a directory or a bundle server (exactly one is set), and the OPA that compiles a directory. */
export interface PolicySource {
  /** The policy directory compiled here; undefined when the policy comes from a bundle server. */
  dir: string | undefined;
  /** Bundles downloaded from a server instead of a directory. */
  bundle: BundleSettings | undefined;
  opaPath: string;
}

const BUNDLE_ONLY = [
  'VAULTGATE_POLICY_BUNDLE_TOKEN_FILE',
  'VAULTGATE_POLICY_BUNDLE_CA_FILE',
  'VAULTGATE_POLICY_BUNDLE_DIR',
  'VAULTGATE_POLICY_VERIFICATION_KEY',
  'VAULTGATE_POLICY_VERIFICATION_SCOPE',
] as const;

/**
 * Where the live policy comes from: a directory (VAULTGATE_POLICY_DIR, the
 * default) or a bundle server (VAULTGATE_POLICY_BUNDLE_URL), never both.
 */
export function policySource(e: Env, problems: string[]): PolicySource {
  if (!e.VAULTGATE_POLICY_BUNDLE_URL) {
    for (const name of BUNDLE_ONLY) {
      if (e[name] !== undefined)
        problems.push(
          `${name}: only used with VAULTGATE_POLICY_BUNDLE_URL; set it to the bundle's URL or remove ${name}`,
        );
    }
    return { dir: e.VAULTGATE_POLICY_DIR ?? DEFAULT_POLICY_DIR, bundle: undefined, opaPath: e.VAULTGATE_OPA_PATH };
  }
  if (e.VAULTGATE_POLICY_DIR) {
    problems.push(
      'VAULTGATE_POLICY_BUNDLE_URL: cannot be set together with VAULTGATE_POLICY_DIR; the policy comes from a directory or from a bundle server: keep one',
    );
  }
  const url = e.VAULTGATE_POLICY_BUNDLE_URL;
  if (e.VAULTGATE_POLICY_BUNDLE_POLL_MIN > e.VAULTGATE_POLICY_BUNDLE_POLL_MAX) {
    problems.push(
      `VAULTGATE_POLICY_BUNDLE_POLL_MIN: ${e.VAULTGATE_POLICY_BUNDLE_POLL_MIN} is more than VAULTGATE_POLICY_BUNDLE_POLL_MAX (${e.VAULTGATE_POLICY_BUNDLE_POLL_MAX}); the wait between polls is drawn between the two`,
    );
  }
  const key = e.VAULTGATE_POLICY_VERIFICATION_KEY;
  if (!url.startsWith('https://')) {
    if (e.VAULTGATE_POLICY_BUNDLE_CA_FILE) {
      problems.push(
        'VAULTGATE_POLICY_BUNDLE_CA_FILE: only used with an https:// VAULTGATE_POLICY_BUNDLE_URL; remove it or use the https URL',
      );
    }
    // Over plain HTTP anyone on the path reads the token, and can replace an unsigned bundle, which decides who gets
    // which secret. A signed bundle without a token only risks being seen.
    const exposed = [
      ...(e.VAULTGATE_POLICY_BUNDLE_TOKEN_FILE ? ['the token of VAULTGATE_POLICY_BUNDLE_TOKEN_FILE can be read'] : []),
      ...(key ? [] : ['an unsigned bundle can be replaced (no VAULTGATE_POLICY_VERIFICATION_KEY)']),
    ];
    if (exposed.length > 0 && !e.VAULTGATE_POLICY_BUNDLE_ALLOW_INSECURE_HTTP) {
      problems.push(
        `VAULTGATE_POLICY_BUNDLE_URL: over http:// ${exposed.join(', and ')} on the way; use an https:// URL, or set VAULTGATE_POLICY_BUNDLE_ALLOW_INSECURE_HTTP=true for a test server on loopback`,
      );
    }
  }
  return {
    dir: undefined,
    opaPath: e.VAULTGATE_OPA_PATH,
    bundle: {
      url,
      pollMinSeconds: e.VAULTGATE_POLICY_BUNDLE_POLL_MIN,
      pollMaxSeconds: e.VAULTGATE_POLICY_BUNDLE_POLL_MAX,
      tokenFile: e.VAULTGATE_POLICY_BUNDLE_TOKEN_FILE,
      caFile: e.VAULTGATE_POLICY_BUNDLE_CA_FILE,
      dir: e.VAULTGATE_POLICY_BUNDLE_DIR,
      verification: key
        ? {
            keyFile: key,
            keyId: e.VAULTGATE_POLICY_VERIFICATION_KEY_ID,
            algorithm: e.VAULTGATE_POLICY_SIGNING_ALG,
            scope: e.VAULTGATE_POLICY_VERIFICATION_SCOPE ?? '',
          }
        : undefined,
    },
  };
}
