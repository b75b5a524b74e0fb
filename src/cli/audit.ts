// `sshgate audit verify FILE`: checks the hash chain of an audit log.
import { runAuditVerifyCommand } from '../audit/verify.js';

/** Runs the verification and returns the process exit code (0 intact, 1 broken, 2 unreadable). */
export function runAuditVerify(file: string, write: (line: string) => void): Promise<number> {
  return runAuditVerifyCommand(file, write);
}
