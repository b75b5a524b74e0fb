// All translation of ssh2, socket and SFTP failures into sshgate error codes lives here.
import { SshgateError, isSshgateError } from '../errors.js';

/** SFTP status codes (draft-ietf-secsh-filexfer-02 section 7). */
const SFTP_NO_SUCH_FILE = 2;
const SFTP_PERMISSION_DENIED = 3;

interface Ssh2LikeError {
  message?: string;
  level?: string;
  code?: string | number;
}

/**
 * Maps an error from connecting (socket, DNS, handshake, authentication) to an {@link SshgateError}.
 * An error that already is an SshgateError passes through unchanged. `where` names the host for the message.
 */
export function mapConnectError(err: unknown, where: string): SshgateError {
  if (isSshgateError(err)) return err;
  const e = (err ?? {}) as Ssh2LikeError;
  const message = e.message ?? String(err);
  switch (e.level) {
    case 'client-authentication':
      return new SshgateError('AUTH_FAILED', `${where}: authentication failed (every method offered was rejected: ${message})`, {
        cause: err,
        hint: 'Check user, identity_file / passphrase_env, agent or password_env for this host.',
      });
    case 'client-timeout':
      return new SshgateError('CONNECT_TIMEOUT', `${where}: the SSH handshake did not complete in time`, { cause: err });
    case 'client-dns':
      return new SshgateError('CONNECT_FAILED', `${where}: cannot resolve the host name (${message})`, { cause: err });
    default:
      break;
  }
  const code = typeof e.code === 'string' ? e.code : '';
  if (['ECONNREFUSED', 'EHOSTUNREACH', 'ENETUNREACH', 'EADDRNOTAVAIL', 'ENOTFOUND', 'EAI_AGAIN'].includes(code)) {
    return new SshgateError('CONNECT_FAILED', `${where}: cannot connect (${code})`, { cause: err });
  }
  if (code === 'ECONNRESET' || code === 'EPIPE' || /before handshake|Connection lost|socket hang up|ended/iu.test(message)) {
    return new SshgateError('CONNECT_FAILED', `${where}: the connection was closed during the handshake (${message})`, { cause: err });
  }
  return new SshgateError('CONNECT_FAILED', `${where}: ${message}`, { cause: err });
}

/** True for connect failures worth one more try with jitter (MaxStartups drops, resets before the banner). */
export function isTransientConnectError(err: SshgateError): boolean {
  return err.code === 'CONNECT_FAILED' && /closed during the handshake|ECONNRESET/u.test(err.message);
}

/**
 * Maps an SFTP error (ssh2 gives `code` = the SFTP status number) to an {@link SshgateError}.
 * `path` is named in the message.
 */
export function mapSftpError(err: unknown, op: string, path: string): SshgateError {
  if (isSshgateError(err)) return err;
  const e = (err ?? {}) as Ssh2LikeError;
  const message = e.message ?? String(err);
  if (e.code === SFTP_NO_SUCH_FILE) return new SshgateError('REMOTE_NOT_FOUND', `${op} ${path}: no such file or directory`, { cause: err });
  if (e.code === SFTP_PERMISSION_DENIED) {
    return new SshgateError('REMOTE_PERMISSION_DENIED', `${op} ${path}: permission denied for the remote account`, { cause: err });
  }
  if (/No SFTP|Not connected|No response|ECONNRESET|closed/iu.test(message)) {
    return new SshgateError('CONNECTION_LOST', `${op} ${path}: the connection was lost (${message})`, { cause: err });
  }
  return new SshgateError('REMOTE_FAILURE', `${op} ${path}: ${message}`, { cause: err });
}
