import { VaultgateError } from '../errors.js';

/** The policy could not be compiled or loaded; `detail` carries OPA's own message. */
export class PolicyBuildError extends VaultgateError {
  constructor(
    message: string,
    readonly detail?: string,
    options?: { cause?: unknown },
  ) {
    super('ERR_POLICY_BUILD', detail ? `${message}\n${detail}` : message, options);
  }
}

/** A bundle's signature is missing, made with another key, or does not cover exactly its files; or a key is unusable. */
export class BundleSignatureError extends PolicyBuildError {
  override readonly code = 'ERR_POLICY_SIGNATURE';
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, undefined, options);
  }
}

/** The bundle server could not be asked, or did not answer with a bundle. */
export class BundleDownloadError extends VaultgateError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('ERR_POLICY_DOWNLOAD', message, options);
  }
}

/** No policy at all (a bundle server not reached since start, and none kept on disk): nothing can be decided. */
export class PolicyUnavailableError extends VaultgateError {
  constructor(message: string) {
    super('ERR_POLICY_UNAVAILABLE', message);
  }
}

/** The OPA CLI is not where the configuration says: nothing can be compiled. */
export class OpaMissingError extends PolicyBuildError {
  override readonly code = 'ERR_OPA_MISSING';
}

/** The policy answered something that is not a valid decision; the request fails with 500. */
export class PolicyOutputError extends VaultgateError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('ERR_POLICY_OUTPUT', message, options);
  }
}

/** A decision log line that says it is a decision but is not one vaultgate can replay; the message names the file and line. */
export class DecisionLogError extends VaultgateError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('ERR_DECISION_LOG', message, options);
  }
}
