// `sshgate audit verify FILE`: walks an audit file line by line, streaming, and reports the first line that breaks
// the hash chain described in audit-log.ts.
import { createReadStream } from 'node:fs';
import { SshgateError } from '../errors.js';
import { GENESIS_PREV, checkAuditLine, sha256Hex } from './audit-log.js';

/** `records` counts the valid records (all of them, or those before `firstBadLine`). */
export type VerifyResult =
  | { ok: true; records: number }
  | { ok: false; records: number; firstBadLine: number; reason: string };

/**
 * Verifies a whole audit file: every line is a valid record (see `checkAuditLine`), the first record's `prev` is
 * 64 zeros, each later `prev` is the sha256 of the line before it, and the file ends with a newline. Stops at the
 * first bad line. Memory holds one line at a time.
 *
 * A file that continues a rotated one would fail at line 1 (its `prev` is not zeros); sshgate does not rotate.
 *
 * @throws SshgateError AUDIT_FAILED when the file cannot be read.
 */
export async function verifyAuditFile(path: string): Promise<VerifyResult> {
  let lineNo = 0;
  let prev = GENESIS_PREV;
  const checkLine = (bytes: Buffer): string | undefined => {
    lineNo += 1;
    const check = checkAuditLine(bytes.toString('utf8'));
    if (!check.ok) return check.reason;
    if (check.record.prev !== prev) {
      return lineNo === 1
        ? 'prev is not 64 zeros in the first record (earlier records were removed, or the file was rotated)'
        : 'prev does not match the previous line (a record was removed, inserted or reordered)';
    }
    prev = sha256Hex(bytes);
    return undefined;
  };
  const bad = (reason: string): VerifyResult => ({ ok: false, records: lineNo - 1, firstBadLine: lineNo, reason });

  let pending: Buffer[] = [];
  try {
    for await (const chunk of createReadStream(path) as AsyncIterable<Buffer>) {
      let start = 0;
      for (let nl = chunk.indexOf(0x0a); nl !== -1; nl = chunk.indexOf(0x0a, start)) {
        const piece = chunk.subarray(start, nl);
        const reason = checkLine(pending.length === 0 ? piece : Buffer.concat([...pending, piece]));
        if (reason !== undefined) return bad(reason);
        pending = [];
        start = nl + 1;
      }
      if (start < chunk.length) pending.push(chunk.subarray(start));
    }
  } catch (err) {
    throw new SshgateError('AUDIT_FAILED', `cannot read audit log ${path}: ${(err as Error).message}`, { cause: err });
  }
  if (pending.length > 0) {
    const reason = checkLine(Buffer.concat(pending));
    return bad(reason ?? 'incomplete line (no trailing newline: an interrupted write?)');
  }
  return { ok: true, records: lineNo };
}

/**
 * Runs `sshgate audit verify FILE`, writing its report through `out`. Returns the exit code: 0 when the chain is
 * intact, 1 when a line is bad (the message names it and why), 2 when the file cannot be read.
 */
export async function runAuditVerifyCommand(file: string, out: (line: string) => void): Promise<number> {
  let result: VerifyResult;
  try {
    result = await verifyAuditFile(file);
  } catch (err) {
    // verifyAuditFile throws only SshgateError.
    out((err as SshgateError).message);
    return 2;
  }
  if (!result.ok) {
    out(`line ${result.firstBadLine}: ${result.reason}`);
    return 1;
  }
  out(`audit log intact: ${result.records} record${result.records === 1 ? '' : 's'}, chain verified`);
  return 0;
}
