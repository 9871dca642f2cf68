/** The policy could not be compiled or loaded; `detail` carries OPA's own message. */
export class PolicyBuildError extends Error {
  readonly code = 'ERR_POLICY_BUILD';
  constructor(
    message: string,
    readonly detail?: string,
  ) {
    super(detail ? `${message}\n${detail}` : message);
    this.name = 'PolicyBuildError';
  }
}

/** The policy answered something that is not a valid decision; the request fails with 500. */
export class PolicyOutputError extends Error {
  readonly code = 'ERR_POLICY_OUTPUT';
  constructor(message: string) {
    super(message);
    this.name = 'PolicyOutputError';
  }
}
