import { decodeJwt, errors as joseErrors, jwtVerify, type JWTPayload } from 'jose';
import { z } from 'zod';
import { TokenError } from './errors.js';
import type { IssuerKeys } from './issuer-keys.js';

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
  audiences: string[];
  algorithms: string[];
  /** Seconds of clock skew allowed on exp, nbf and iat. */
  clockToleranceSeconds?: number;
}

export type TokenVerifier = (token: string) => Promise<StepClaims>;

/** Builds the function that turns a compact JWT into verified step claims, or throws TokenError. */
export function createTokenVerifier(options: VerifyOptions): TokenVerifier {
  const tolerance = options.clockToleranceSeconds ?? 30;
  return async (token) => {
    let unverified: JWTPayload;
    try {
      unverified = decodeJwt(token);
    } catch (err) {
      throw new TokenError('ERR_TOKEN_MALFORMED', `token does not decode: ${(err as Error).message}`);
    }
    // The issuer picks the key set, so it is checked against the allow-list
    // before anything is fetched on its behalf.
    if (typeof unverified.iss !== 'string') {
      throw new TokenError('ERR_JWT_ISSUER', 'token has no issuer');
    }
    const keys = await options.keys.forIssuer(unverified.iss);

    let payload: JWTPayload;
    try {
      ({ payload } = await jwtVerify(token, keys, {
        issuer: unverified.iss,
        audience: options.audiences,
        algorithms: options.algorithms,
        clockTolerance: tolerance,
        requiredClaims: ['exp', 'iat', ...REQUIRED_CLAIMS],
      }));
    } catch (err) {
      if (err instanceof joseErrors.JOSEError) throw new TokenError(err.code, err.message);
      throw new TokenError('ERR_TOKEN_INVALID', (err as Error).message);
    }
    if (typeof payload.iat === 'number' && payload.iat > Date.now() / 1000 + tolerance) {
      throw new TokenError('ERR_JWT_IAT', 'token was issued in the future');
    }
    const claims = claimsSchema.safeParse(payload);
    if (!claims.success) {
      const issue = claims.error.issues[0]!;
      throw new TokenError('ERR_JWT_CLAIM_TYPE', `claim ${String(issue.path[0])}: ${issue.message}`);
    }
    return claims.data as StepClaims;
  };
}
