import { VaultgateError } from '../errors.js';

/**
 * Why a token was refused. The code goes to the audit log; the HTTP answer is
 * always the same `invalid_token`, so a caller learns nothing about which check failed.
 */
export class TokenError extends VaultgateError {}
