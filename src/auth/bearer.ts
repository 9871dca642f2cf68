import { TokenError } from './errors.js';

/** Larger tokens are refused before any parsing (Bitbucket's are about 1.5 KiB). */
export const MAX_TOKEN_BYTES = 8192;

// Three base64url segments: a JWS in compact serialisation, nothing else.
const COMPACT_JWS = /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$/;

/** Takes the JWT out of an `Authorization: Bearer <jwt>` header. */
export function extractBearerToken(header: string | undefined): string {
  if (header === undefined || header.trim() === '') {
    throw new TokenError('ERR_TOKEN_MISSING', 'no Authorization header');
  }
  const match = /^Bearer +(\S+) *$/i.exec(header);
  if (!match) {
    throw new TokenError('ERR_TOKEN_MALFORMED', 'Authorization header is not "Bearer <token>"');
  }
  const token = match[1]!;
  if (token.length > MAX_TOKEN_BYTES) {
    throw new TokenError('ERR_TOKEN_TOO_LARGE', `token is longer than ${MAX_TOKEN_BYTES} bytes`);
  }
  if (!COMPACT_JWS.test(token)) {
    throw new TokenError('ERR_TOKEN_MALFORMED', 'token is not a compact JWS (three base64url segments)');
  }
  return token;
}
