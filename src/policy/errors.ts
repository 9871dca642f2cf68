import { VaultgateError } from '../errors.js';

/** The policy could not be compiled or loaded; `detail` carries OPA's own message. */
export class PolicyBuildError extends VaultgateError {
  constructor(
    message: string,
    readonly detail?: string,
  ) {
    super('ERR_POLICY_BUILD', detail ? `${message}\n${detail}` : message);
  }
}

/** The OPA CLI is not where the configuration says: nothing can be compiled. */
export class OpaMissingError extends PolicyBuildError {
  override readonly code = 'ERR_OPA_MISSING';
}

/** The policy answered something that is not a valid decision; the request fails with 500. */
export class PolicyOutputError extends VaultgateError {
  constructor(message: string) {
    super('ERR_POLICY_OUTPUT', message);
  }
}
