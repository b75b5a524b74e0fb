// Every failure sshgate reports carries one stable code from this catalogue (docs/errors.md lists them all).

/** Where a failure comes from; drives how a client should react. */
export type ErrorCategory = 'user' | 'policy' | 'security' | 'remote' | 'internal';

/**
 * The stable error codes. Each one is documented in docs/errors.md (a test keeps the two in step).
 * The `retryable` flag of each code lives in {@link ERROR_CATALOG}.
 */
export const ERROR_CATALOG = {
  INVALID_INPUT: { category: 'user', retryable: false, summary: 'The arguments break a rule the schema cannot express (for example two fields that exclude each other).' },
  HOST_NOT_CONFIGURED: { category: 'user', retryable: false, summary: 'The host alias is not in the inventory; call ssh_list_hosts.' },
  CONFIG_INVALID: { category: 'user', retryable: false, summary: 'The configuration file or environment is invalid; the message names the key path.' },
  POLICY_DENIED: { category: 'policy', retryable: false, summary: 'The tier, tool group or a per-host toggle does not allow this call; the message names the rule and the key to change.' },
  COMMAND_DENIED: { category: 'policy', retryable: false, summary: 'The command policy refused the command; the message names the rule and the simple command it fired on.' },
  PATH_DENIED: { category: 'policy', retryable: false, summary: 'The path is outside the allowed roots, restricted, or leaves them through a symlink.' },
  RATE_LIMITED: { category: 'policy', retryable: true, summary: 'The per-host rate or concurrency limit is reached; the hint says when to retry.' },
  APPROVAL_REQUIRED: { category: 'policy', retryable: true, summary: 'A human must approve this call first; the message carries the approval id and how to approve it.' },
  APPROVAL_DENIED: { category: 'policy', retryable: false, summary: 'A human refused the call, or the approval expired or does not match this call.' },
  HOST_KEY_UNKNOWN: { category: 'security', retryable: false, summary: 'The host key is not in known_hosts; nothing was sent. The message shows the fingerprint and how to pin it.' },
  HOST_KEY_MISMATCH: { category: 'security', retryable: false, summary: 'The host presented a key different from the one in known_hosts (possible man-in-the-middle); never fixed automatically.' },
  HOST_KEY_REVOKED: { category: 'security', retryable: false, summary: 'The host presented a key marked @revoked in known_hosts.' },
  AUTH_FAILED: { category: 'remote', retryable: false, summary: 'The server rejected every authentication method offered.' },
  CONNECT_FAILED: { category: 'remote', retryable: true, summary: 'The TCP connection or SSH handshake failed (refused, unreachable, DNS).' },
  CONNECT_TIMEOUT: { category: 'remote', retryable: true, summary: 'The host did not complete the SSH handshake in time.' },
  CONNECTION_LOST: { category: 'remote', retryable: true, summary: 'The connection dropped during the call; for a command, its exit status is unknown.' },
  REMOTE_NOT_FOUND: { category: 'remote', retryable: false, summary: 'The remote path does not exist (SFTP status 2).' },
  REMOTE_PERMISSION_DENIED: { category: 'remote', retryable: false, summary: 'The remote account may not do this (SFTP status 3).' },
  REMOTE_FAILURE: { category: 'remote', retryable: false, summary: 'The remote side reported another failure (SFTP status 4 and others, a failed verification after a write).' },
  ALREADY_EXISTS: { category: 'user', retryable: false, summary: 'The destination exists and the call did not allow replacing it (overwrite: false); nothing was written.' },
  LOCAL_FAILURE: { category: 'user', retryable: false, summary: 'A file operation on this machine (the local side of an upload or download) failed: missing path, not a regular file, permission, full disk; the message names the path.' },
  COMMAND_TIMEOUT: { category: 'remote', retryable: true, summary: 'The command ran past timeout_ms and was stopped on the host; partial output is returned.' },
  SUDO_FAILED: { category: 'remote', retryable: false, summary: 'sudo refused to run (wrong or missing password, a TTY required, not a sudoer, sudo missing); nothing ran as root. details.reason says which.' },
  CANCELLED: { category: 'user', retryable: false, summary: 'The client cancelled the call; a running command was stopped on the host.' },
  SESSION_NOT_FOUND: {
    category: 'user',
    retryable: false,
    summary: 'No open shell session has this id on this host (closed, expired, or opened by another sshgate instance); open one with ssh_open_shell.',
  },
  AUDIT_FAILED: { category: 'internal', retryable: false, summary: 'The audit record could not be written, so the call was refused (fail closed).' },
  INTERNAL: { category: 'internal', retryable: false, summary: 'An unexpected fault; the log has the details under the correlation id.' },
} as const satisfies Record<string, { category: ErrorCategory; retryable: boolean; summary: string }>;

export type ErrorCode = keyof typeof ERROR_CATALOG;

/** Options of {@link SshgateError}. `details` is structured data safe to show the model (no secrets). */
export interface SshgateErrorOptions {
  hint?: string;
  cause?: unknown;
  details?: Record<string, unknown>;
}

/**
 * The one error type sshgate throws on purpose. `message` is written for the model and the operator:
 * it names the field, rule or host involved. Anything else thrown is mapped to `INTERNAL`.
 */
export class SshgateError extends Error {
  readonly code: ErrorCode;
  readonly category: ErrorCategory;
  readonly retryable: boolean;
  readonly hint: string | undefined;
  readonly details: Record<string, unknown> | undefined;

  constructor(code: ErrorCode, message: string, options: SshgateErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'SshgateError';
    this.code = code;
    this.category = ERROR_CATALOG[code].category;
    this.retryable = ERROR_CATALOG[code].retryable;
    this.hint = options.hint;
    this.details = options.details;
  }
}

/** Shorthand for a cross-field input error thrown inside a tool's `run`. */
export function invalidInput(message: string, details?: Record<string, unknown>): SshgateError {
  return new SshgateError('INVALID_INPUT', message, details === undefined ? {} : { details });
}

/** True when `err` is an {@link SshgateError}, optionally with the given code. */
export function isSshgateError(err: unknown, code?: ErrorCode): err is SshgateError {
  return err instanceof SshgateError && (code === undefined || err.code === code);
}
