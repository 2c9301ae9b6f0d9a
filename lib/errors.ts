/**
 * One error type per kind of failure. `code` is stable and machine-readable (HTTP bodies, CLI
 * exit codes, Temporal failure types); `field` names the offending input when there is one.
 */
export class KeelError extends Error {
  /** The message without data values or program output, safe for API callers; unset when there is none. */
  publicMessage?: string;

  constructor(
    readonly code: string,
    message: string,
    readonly field?: string,
  ) {
    super(message);
    this.name = new.target.name;
  }

  /** Sets `publicMessage`, for a message that quotes data or program output (what API callers see instead). */
  withPublicMessage(text: string): this {
    this.publicMessage = text;
    return this;
  }
}

/** Input that will never be valid: bad config, bad request, bad workflow input. Not retryable. */
export class InvalidInput extends KeelError {
  constructor(message: string, field?: string) {
    super('InvalidInput', message, field);
  }
}

/** Stored bytes that do not match their recorded sha256 or size. Never served. */
export class ArtifactCorrupt extends KeelError {
  constructor(
    readonly uri: string,
    message: string,
  ) {
    super('ArtifactCorrupt', message);
  }
}

export class ArtifactNotFound extends KeelError {
  constructor(readonly uri: string) {
    super('ArtifactNotFound', `artifact not found: ${uri}`);
  }
}

/** A required local component is missing or cannot start; the message says what to do. */
export class StackError extends KeelError {
  constructor(message: string) {
    super('StackError', message);
  }
}

/** Failure types that mean the input was wrong: never retried, answered as the caller's mistake. */
export const BAD_INPUT_TYPES: readonly string[] = ['InvalidInput', 'NotFound', 'ArtifactNotFound'];
