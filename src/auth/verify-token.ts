import {
  decodeJwt,
  decodeProtectedHeader,
  errors as joseErrors,
  type JWTPayload,
  type ProtectedHeaderParameters,
} from 'jose';
import { z } from 'zod';
import type { ErrorCode } from '../errors.js';
import { systemClock, type Clock } from '../util/clock.js';
import { TokenError } from './errors.js';
import type { IssuerKeys } from './issuer-keys.js';
import { verifySignature } from './verify-signature.js';

const REQUIRED_CLAIMS = ['sub', 'repositoryUuid', 'workspaceUuid', 'pipelineUuid', 'stepUuid'] as const;

const claimsSchema = z.looseObject({
  iss: z.string(),
  sub: z.string().min(1),
  repositoryUuid: z.string().min(1),
  workspaceUuid: z.string().min(1),
  pipelineUuid: z.string().min(1),
  stepUuid: z.string().min(1),
  accountUuid: z.string().optional(),
  branchName: z.string().optional(),
  deploymentEnvironmentUuid: z.string().optional(),
});

/** The verified claims of a Bitbucket Pipelines step token. */
export type StepClaims = z.infer<typeof claimsSchema> & JWTPayload;

export interface VerifyOptions {
  keys: IssuerKeys;
  /** Per trusted issuer: the audiences and signature algorithms it may use. */
  issuers: Array<{ issuer: string; audiences: string[]; algorithms: string[] }>;
  /** Seconds of clock skew allowed on exp, nbf and iat. */
  clockToleranceSeconds?: number;
  /** Longest accepted `exp - iat`, in seconds (Bitbucket's tokens live about an hour). */
  maxLifetimeSeconds?: number;
  /** The clock exp, nbf and iat are checked against; the real one when absent. */
  clock?: Clock;
}

/** Seconds of clock skew allowed by default; the step-use count must outlive `exp` by as much. */
export const CLOCK_TOLERANCE_SECONDS = 30;

/** Longer `kid` values are refused before any key lookup. */
export const MAX_KID_LENGTH = 256;

export type TokenVerifier = (token: string) => Promise<StepClaims>;

const invalidClaim = (message: string) => new TokenError('ERR_JWT_CLAIM_VALIDATION_FAILED', message);

interface ClaimLimits {
  audiences: string[];
  tolerance: number;
  maxLifetime: number;
  /** Seconds since the epoch. */
  now: number;
}

/**
 * The registered-claim checks of RFC 7519 that vaultgate relies on (jose's
 * jwtVerify made most of them before the signature moved to node:crypto; the
 * codes are kept), plus vaultgate's own: no issue date in the future, a bounded lifetime.
 */
function checkRegisteredClaims(payload: JWTPayload, { audiences, tolerance, maxLifetime, now }: ClaimLimits): void {
  for (const name of ['exp', 'iat', ...REQUIRED_CLAIMS]) {
    if (!(name in payload)) throw invalidClaim(`missing required "${name}" claim`);
  }
  for (const name of ['exp', 'iat', 'nbf'] as const) {
    if (payload[name] !== undefined && (typeof payload[name] !== 'number' || !Number.isFinite(payload[name]))) {
      throw invalidClaim(`"${name}" claim must be a number`);
    }
  }
  if (payload.nbf !== undefined && payload.nbf > now + tolerance)
    throw invalidClaim('"nbf" claim timestamp check failed');
  if (payload.exp! <= now - tolerance) throw new TokenError('ERR_JWT_EXPIRED', '"exp" claim timestamp check failed');
  const aud = payload.aud;
  const given = typeof aud === 'string' ? [aud] : Array.isArray(aud) ? aud : [];
  if (!given.some((a) => typeof a === 'string' && audiences.includes(a)))
    throw invalidClaim('unexpected "aud" claim value');
  const { iat, exp } = payload as { iat: number; exp: number };
  if (iat > now + tolerance) throw new TokenError('ERR_JWT_IAT', 'token was issued in the future');
  if (exp - iat > maxLifetime) {
    throw new TokenError('ERR_JWT_LIFETIME', `token lives ${exp - iat} s, longer than the ${maxLifetime} s allowed`);
  }
}

/** Builds the function that turns a compact JWT into verified step claims, or throws TokenError. */
export function createTokenVerifier(options: VerifyOptions): TokenVerifier {
  const tolerance = options.clockToleranceSeconds ?? CLOCK_TOLERANCE_SECONDS;
  const maxLifetime = options.maxLifetimeSeconds ?? 7200;
  const clock = options.clock ?? systemClock;
  const settings = new Map(options.issuers.map((i) => [i.issuer, i]));
  return async (token) => {
    let unverified: JWTPayload;
    let header: ProtectedHeaderParameters;
    try {
      header = decodeProtectedHeader(token);
      unverified = decodeJwt(token);
    } catch (err) {
      throw new TokenError('ERR_TOKEN_MALFORMED', `token does not decode: ${(err as Error).message}`, {
        cause: err,
      });
    }
    // No extension this verifier would have to understand is acceptable (RFC 7515 §4.1.11).
    if (header.crit !== undefined) throw new TokenError('ERR_JWS_CRIT', 'token header has crit');
    if (header.kid !== undefined && (typeof header.kid !== 'string' || header.kid.length > MAX_KID_LENGTH)) {
      throw new TokenError('ERR_JWS_KID', 'token kid is not a string of reasonable length');
    }
    // The issuer picks the key set, so it is checked against the allow-list
    // before anything is fetched on its behalf.
    const issuer = typeof unverified.iss === 'string' ? settings.get(unverified.iss) : undefined;
    if (!issuer) throw new TokenError('ERR_JWT_ISSUER', 'issuer is not trusted');
    const keys = await options.keys.forIssuer(issuer.issuer);

    if (typeof header.alg !== 'string' || !issuer.algorithms.includes(header.alg)) {
      throw new TokenError('ERR_JOSE_ALG_NOT_ALLOWED', '"alg" (Algorithm) Header Parameter value not allowed');
    }
    const [protectedHeader, encodedPayload, signature] = token.split('.') as [string, string, string];
    let key;
    try {
      key = await keys(header as Parameters<typeof keys>[0], {
        protected: protectedHeader,
        payload: encodedPayload,
        signature,
      });
    } catch (err) {
      if (err instanceof TokenError) throw err;
      throw new TokenError(joseCode(err), (err as Error).message, { cause: err });
    }
    verifySignature(token, header.alg, key);

    checkRegisteredClaims(unverified, {
      audiences: issuer.audiences,
      tolerance,
      maxLifetime,
      now: Math.floor(clock() / 1000),
    });
    const claims = claimsSchema.safeParse(unverified);
    if (!claims.success) {
      const issue = claims.error.issues[0]!;
      throw new TokenError('ERR_JWT_CLAIM_TYPE', `claim ${String(issue.path[0])}: ${issue.message}`);
    }
    return claims.data as StepClaims;
  };
}

/** The codes jose's key selection throws, kept; anything else it throws is an invalid token. */
const JOSE_KEY_CODES: ReadonlySet<string> = new Set<ErrorCode>([
  'ERR_JWKS_NO_MATCHING_KEY',
  'ERR_JWKS_MULTIPLE_MATCHING_KEYS',
  'ERR_JOSE_NOT_SUPPORTED',
]);

function joseCode(err: unknown): ErrorCode {
  const code = err instanceof joseErrors.JOSEError ? err.code : undefined;
  return code !== undefined && JOSE_KEY_CODES.has(code) ? (code as ErrorCode) : 'ERR_TOKEN_INVALID';
}
