// Logging goes to stderr (fd 2) only: in stdio mode stdout carries JSON-RPC and nothing else may write there.
import { pino, type Logger } from 'pino';

export type { Logger };

/**
 * Creates the process logger: pino writing synchronously to fd 2.
 * `level` comes from `SSHGATE_LOG_LEVEL` (default `info`). Secrets never reach it: callers pass
 * redacted values, and pino's own `redact` drops the usual secret-bearing keys as a second line.
 */
export function createLogger(level: string = process.env['SSHGATE_LOG_LEVEL'] ?? 'info'): Logger {
  return pino(
    {
      name: 'sshgate',
      level,
      redact: {
        paths: ['password', 'passphrase', 'privateKey', '*.password', '*.passphrase', '*.privateKey', 'secret', '*.secret', 'token', '*.token'],
        censor: '<redacted>',
      },
    },
    pino.destination({ fd: 2, sync: true }),
  );
}

/** A logger that discards everything, for library use and tests. */
export const silentLogger: Logger = pino({ level: 'silent' });
