// The audit trail: one hash-chained JSON line per tool call, written before the caller answers, so a call whose
// record cannot be written is refused (fail closed).
//
// Record format (DESIGN section 7). A line is the canonical JSON of a record followed by its hash:
//
//   canonical JSON = JSON.stringify of an object with exactly these keys, in this order:
//     ts id tool tier host principal decision rule args result exit_code bytes_out duration_ms prev
//   (`args` keeps its own key order; JSON.parse preserves it, so re-serialising a parsed line reproduces the text)
//   hash = hex sha256 of the UTF-8 bytes of the canonical JSON
//   line = the canonical JSON with `,"hash":"<hash>"` inserted before its closing brace, then "\n"
//   prev = hex sha256 of the previous line's bytes without its "\n"; 64 zeros in the first record of a file
//
// `hash` seals a record's content; `prev` orders the records. A line that is not byte-for-byte its own canonical
// serialisation (extra keys, reordered keys, whitespace) is rejected by `checkAuditLine`.
//
// Not a security boundary on its own: the chain is keyless. Anyone who can write the file can cut records off its
// end, or rewrite it from some point on with fresh hashes; the chain detects edits, deletions and reordering
// inside the file, not a full rewrite. Copy the last line's hash somewhere the writer cannot reach to anchor it.
import { createHash } from 'node:crypto';
import { constants as fsConstants } from 'node:fs';
import { mkdir, open, readFile, unlink, type FileHandle } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';
import { SshgateError } from '../errors.js';
import { TIERS, type Tier } from '../policy/tiers.js';

export const AUDIT_DECISIONS = ['allowed', 'denied', 'approved', 'refused-approval'] as const;
export type AuditDecision = (typeof AUDIT_DECISIONS)[number];

/** What the caller knows about one tool call. `args` must already be redacted. */
export interface AuditEntry {
  /** Correlation id of the call. */
  id: string;
  tool: string;
  tier: Tier;
  /** Host alias, or null for calls without one (ssh_list_hosts). */
  host: string | null;
  /** Who asked, e.g. `stdio:alice`. */
  principal: string;
  decision: AuditDecision;
  /** The policy rule that fired, or null. */
  rule: string | null;
  /** Who approved the call (`cli:<user>`, `client-elicitation`), for decision `approved`; null otherwise. */
  approved_by?: string | null;
  /** Redacted arguments: must survive a JSON round trip (no BigInt, cycles, NaN). */
  args: Record<string, unknown>;
  /** `ok`, or the error code of the failure. */
  result: string;
  exit_code: number | null;
  bytes_out: number;
  duration_ms: number;
}

/** One line of the audit file. */
export interface AuditRecord extends Omit<AuditEntry, 'approved_by'> {
  approved_by: string | null;
  /** ISO 8601 UTC with milliseconds, taken when the record is written. */
  ts: string;
  prev: string;
  hash: string;
}

export interface AuditLogOptions {
  /** Clock for `ts` (tests). */
  now?: () => Date;
  /**
   * fdatasync after each record (default true): a record acknowledged by `append` survives a power loss. Measured
   * at ~0.2-0.3 ms per record on ext4 here; turning it off leaves the last records to the kernel's write-back
   * (typically up to 30 s may be lost on a crash, never reordered, and `verify` then sees a shorter, intact chain).
   */
  fsync?: boolean;
}

/** `prev` of the first record of a file. */
export const GENESIS_PREV = '0'.repeat(64);

const HEX64 = /^[0-9a-f]{64}$/;
const ISO_UTC_MS = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/;
/** Tail window first read by `open`; doubled until it holds the whole last line. */
const TAIL_WINDOW_BYTES = 64 * 1024;
const NEWLINE = 0x0a;

type RecordBody = Omit<AuditRecord, 'hash'>;

const isString = (v: unknown): boolean => typeof v === 'string';
const isStringOrNull = (v: unknown): boolean => v === null || typeof v === 'string';
const isCount = (v: unknown): boolean => Number.isSafeInteger(v) && (v as number) >= 0;

/** Validity of each field, in canonical order (the order of the keys of this object). */
const FIELD_CHECKS: { readonly [K in keyof AuditRecord]: (v: unknown) => boolean } = {
  ts: (v) => typeof v === 'string' && ISO_UTC_MS.test(v),
  id: isString,
  tool: isString,
  tier: (v) => (TIERS as readonly unknown[]).includes(v),
  host: isStringOrNull,
  principal: isString,
  decision: (v) => (AUDIT_DECISIONS as readonly unknown[]).includes(v),
  rule: isStringOrNull,
  approved_by: isStringOrNull,
  args: (v) => typeof v === 'object' && v !== null && !Array.isArray(v),
  result: isString,
  exit_code: (v) => v === null || Number.isSafeInteger(v),
  bytes_out: isCount,
  duration_ms: (v) => typeof v === 'number' && Number.isFinite(v) && v >= 0,
  prev: (v) => typeof v === 'string' && HEX64.test(v),
  hash: (v) => typeof v === 'string' && HEX64.test(v),
};

/** Hex sha256 of a string's UTF-8 bytes, or of raw bytes. */
export function sha256Hex(data: string | Uint8Array): string {
  return createHash('sha256').update(data).digest('hex');
}

/** Serialises a record body canonically (see the module comment). Throws whatever JSON.stringify throws. */
function serialize(r: RecordBody): { hash: string; line: string } {
  const canonical = JSON.stringify({
    ts: r.ts,
    id: r.id,
    tool: r.tool,
    tier: r.tier,
    host: r.host,
    principal: r.principal,
    decision: r.decision,
    rule: r.rule,
    approved_by: r.approved_by,
    args: r.args,
    result: r.result,
    exit_code: r.exit_code,
    bytes_out: r.bytes_out,
    duration_ms: r.duration_ms,
    prev: r.prev,
  });
  const hash = sha256Hex(canonical);
  return { hash, line: `${canonical.slice(0, -1)},"hash":"${hash}"}` };
}

export type LineCheck = { ok: true; record: AuditRecord } | { ok: false; reason: string };

/**
 * Checks one line (without its newline) on its own: JSON, every field present and well-typed, `hash` matching the
 * content, and the text being exactly the canonical serialisation. Does not check `prev`, which needs the line
 * before it. Never throws.
 */
export function checkAuditLine(line: string): LineCheck {
  let parsed: unknown;
  try {
    parsed = JSON.parse(line);
  } catch {
    return { ok: false, reason: 'not valid JSON (truncated or corrupted)' };
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
    return { ok: false, reason: 'not a JSON object' };
  }
  const fields = parsed as Record<string, unknown>;
  for (const [name, isValid] of Object.entries(FIELD_CHECKS)) {
    if (!isValid(fields[name])) return { ok: false, reason: `field "${name}" is missing or malformed` };
  }
  const record = parsed as AuditRecord;
  const expected = serialize(record);
  if (expected.hash !== record.hash) return { ok: false, reason: 'hash does not match its content (record was altered)' };
  if (expected.line !== line) {
    return { ok: false, reason: 'not in canonical form (extra or reordered keys, or added whitespace)' };
  }
  return { ok: true, record };
}

function auditFailed(message: string, cause?: unknown): SshgateError {
  return new SshgateError('AUDIT_FAILED', message, cause === undefined ? {} : { cause });
}

/** Message of a thrown fs or JSON error (both throw Error instances). */
function errorText(err: unknown): string {
  return (err as Error).message;
}

/** Reads exactly `length` bytes at `position` (a regular file that does not shrink meanwhile). */
async function readAt(fh: FileHandle, position: number, length: number): Promise<Buffer> {
  const buf = Buffer.alloc(length);
  let done = 0;
  while (done < length) {
    const { bytesRead } = await fh.read(buf, done, length - done, position + done);
    if (bytesRead === 0) throw new Error(`file shrank while reading at byte ${position + done}`);
    done += bytesRead;
  }
  return buf;
}

/** 1-based number of the line that starts at byte `offset`: counts the newlines before it, in chunks. */
async function lineNumberAt(fh: FileHandle, offset: number): Promise<number> {
  let lines = 1;
  for (let pos = 0; pos < offset; pos += TAIL_WINDOW_BYTES) {
    const chunk = await readAt(fh, pos, Math.min(TAIL_WINDOW_BYTES, offset - pos));
    for (let i = chunk.indexOf(NEWLINE); i !== -1; i = chunk.indexOf(NEWLINE, i + 1)) lines += 1;
  }
  return lines;
}

/**
 * Reads the last line of a non-empty file from its tail: a window of TAIL_WINDOW_BYTES, doubled until it holds the
 * whole line. `complete` is false when the file does not end with a newline (an interrupted write).
 */
async function readLastLine(fh: FileHandle, size: number): Promise<{ line: Buffer; start: number; complete: boolean }> {
  for (let window = Math.min(size, TAIL_WINDOW_BYTES); ; window = Math.min(size, window * 2)) {
    const buf = await readAt(fh, size - window, window);
    const complete = buf[buf.length - 1] === NEWLINE;
    const end = complete ? buf.length - 1 : buf.length;
    const cut = end === 0 ? -1 : buf.lastIndexOf(NEWLINE, end - 1);
    if (cut !== -1 || window === size) {
      return { line: buf.subarray(cut + 1, end), start: size - window + cut + 1, complete };
    }
  }
}

/**
 * Append-only audit file. One instance per file and per process: appends are queued so the chain stays linear,
 * and every append checks that the file still has the size this instance left it with.
 */
export class AuditLog {
  readonly path: string;
  readonly #now: () => Date;
  readonly #fsync: boolean;
  /** sha256 of the last line written; `prev` of the next record. Advances only after a successful write. */
  #prev: string;
  /** File size after the last successful write. */
  #size: number;
  #queue: Promise<unknown> = Promise.resolve();
  #closed = false;

  private constructor(path: string, prev: string, size: number, options: AuditLogOptions) {
    this.path = path;
    this.#prev = prev;
    this.#size = size;
    this.#now = options.now ?? (() => new Date());
    this.#fsync = options.fsync ?? true;
  }

  /**
   * Opens `path` for appending, creating missing parent directories (0700) and the file (0600). An existing file
   * continues its chain from its last line, read from the tail.
   *
   * @throws SshgateError AUDIT_FAILED when the path cannot be created or read, is not a regular file, or its last
   * line is not a valid record (the message names the file and line; a broken file is never silently restarted).
   */
  static async open(path: string, options: AuditLogOptions = {}): Promise<AuditLog> {
    const file = resolve(path);
    let fh: FileHandle | undefined;
    try {
      await mkdir(dirname(file), { recursive: true, mode: 0o700 });
      try {
        fh = await open(file, 'wx', 0o600);
        // Durability of the new directory entry itself.
        if (options.fsync ?? true) await syncDirectory(dirname(file));
        return new AuditLog(file, GENESIS_PREV, 0, options);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      }
      fh = await open(file, 'r');
      const stat = await fh.stat();
      if (!stat.isFile()) throw auditFailed(`audit log ${file} is not a regular file`);
      if (stat.size === 0) return new AuditLog(file, GENESIS_PREV, 0, options);
      const last = await readLastLine(fh, stat.size);
      const check = last.complete
        ? checkAuditLine(last.line.toString('utf8'))
        : ({ ok: false, reason: 'incomplete line (no trailing newline: an interrupted write?)' } as const);
      if (!check.ok) {
        const lineNo = await lineNumberAt(fh, last.start);
        throw auditFailed(
          `audit log ${file} line ${lineNo}: ${check.reason}; refusing to continue a broken chain. ` +
            `Run \`sshgate audit verify ${file}\`, then move the file aside to start a new one.`,
        );
      }
      return new AuditLog(file, sha256Hex(last.line), stat.size, options);
    } catch (err) {
      if (err instanceof SshgateError) throw err;
      throw auditFailed(`cannot open audit log ${file}: ${errorText(err)}`, err);
    } finally {
      await fh?.close().catch(() => undefined);
    }
  }

  /**
   * Writes one record and returns it as written. Appends run one at a time in call order; `ts` is read when the
   * record's turn comes, so it follows file order (unless the wall clock steps back).
   *
   * @throws SshgateError AUDIT_FAILED when the log is closed, the entry does not serialise to a valid record, the
   * file is gone, changed outside this instance (size differs), or the write or sync fails. A failed append leaves
   * the file and the chain as they were (a partial line is truncated away), so the next append may succeed.
   */
  append(entry: AuditEntry): Promise<AuditRecord> {
    if (this.#closed) return Promise.reject(auditFailed(`audit log ${this.path} is closed`));
    const result = this.#queue.then(() => this.#write(entry));
    this.#queue = result.catch(() => undefined);
    return result;
  }

  /** Waits for queued appends, then refuses new ones. Idempotent. */
  async close(): Promise<void> {
    this.#closed = true;
    await this.#queue;
  }

  async #write(entry: AuditEntry): Promise<AuditRecord> {
    const body: RecordBody = {
      ts: this.#now().toISOString(),
      id: entry.id,
      tool: entry.tool,
      tier: entry.tier,
      host: entry.host,
      principal: entry.principal,
      decision: entry.decision,
      rule: entry.rule,
      approved_by: entry.approved_by ?? null,
      args: entry.args,
      result: entry.result,
      exit_code: entry.exit_code,
      bytes_out: entry.bytes_out,
      duration_ms: entry.duration_ms,
      prev: this.#prev,
    };
    let line: string;
    try {
      line = serialize(body).line;
    } catch (err) {
      throw auditFailed(`audit record for call ${entry.id} cannot be serialised: ${errorText(err)}`, err);
    }
    // Security: write only lines that verify, so a caller bug (NaN, undefined, a bad tier) cannot look like tampering.
    let check = checkAuditLine(line);
    if (!check.ok) throw auditFailed(`audit record for call ${entry.id} is invalid: ${check.reason}`);

    let bytes = Buffer.from(`${line}\n`, 'utf8');
    let fh: FileHandle | undefined;
    let unlock: (() => Promise<void>) | undefined;
    /** Set once the size check passed: from then on a failure may leave part of the line behind. */
    let writing: FileHandle | undefined;
    try {
      // Opened per record, without O_CREAT: a removed or replaced file fails here instead of silently restarting.
      unlock = await acquireLock(`${this.path}.lock`);
      fh = await open(this.path, fsConstants.O_WRONLY | fsConstants.O_APPEND);
      const { size } = await fh.stat();
      if (size > this.#size) {
        // Another sshgate process (a second MCP client on the same default path) appended under the lock:
        // continue the chain from its last record, which must itself be a valid record.
        await this.#catchUp(size);
        body.prev = this.#prev;
        line = serialize(body).line;
        const again = checkAuditLine(line);
        if (!again.ok) throw auditFailed(`audit record for call ${entry.id} is invalid: ${again.reason}`);
        check = again;
        bytes = Buffer.from(`${line}\n`, 'utf8');
      } else if (size !== this.#size) {
        throw auditFailed(
          `audit log ${this.path} shrank outside sshgate (size ${size}, expected ${this.#size}): it was truncated or ` +
            'rotated. Refusing to write so the chain is not broken; move the file aside and restart to continue.',
        );
      }
      writing = fh;
      const { bytesWritten } = await fh.write(bytes, 0, bytes.length);
      if (bytesWritten !== bytes.length) throw new Error(`short write: ${bytesWritten} of ${bytes.length} bytes`);
      if (this.#fsync) await fh.datasync();
    } catch (err) {
      // Roll a partial or unsynced line back so the file matches #prev; if that fails, the size check above
      // refuses every later append rather than chaining onto a broken line.
      await writing?.truncate(this.#size).catch(() => undefined);
      if (err instanceof SshgateError) throw err;
      throw auditFailed(`cannot write audit record to ${this.path}: ${errorText(err)}`, err);
    } finally {
      // A close error is ignored: by then the line is written (and synced when #fsync is on).
      await fh?.close().catch(() => undefined);
      await unlock?.();
    }
    this.#prev = sha256Hex(line);
    this.#size += bytes.length;
    return check.record;
  }

  /** Reads the last line of the file (grown to `size` by another process) and continues the chain from it. */
  async #catchUp(size: number): Promise<void> {
    const fh = await open(this.path, 'r');
    try {
      const last = await readLastLine(fh, size);
      const check = last.complete ? checkAuditLine(last.line.toString('utf8')) : ({ ok: false, reason: 'incomplete last line' } as const);
      if (!check.ok) throw auditFailed(`audit log ${this.path}: another writer left an invalid last record (${check.reason}); refusing to chain onto it`);
      this.#prev = sha256Hex(last.line);
      this.#size = size;
    } finally {
      await fh.close().catch(() => undefined);
    }
  }
}

/**
 * Takes the append lock of an audit file shared by several sshgate processes: a lock file created with
 * O_EXCL holding the owner's pid. A lock whose owner is gone is removed; waiting is bounded (5 s).
 * Returns the release function.
 * @throws SshgateError AUDIT_FAILED when the lock cannot be taken.
 */
async function acquireLock(lockPath: string): Promise<() => Promise<void>> {
  const deadline = Date.now() + 5000;
  for (;;) {
    try {
      const fh = await open(lockPath, 'wx', 0o600);
      await fh.writeFile(String(process.pid));
      await fh.close();
      return () => unlink(lockPath).catch(() => undefined);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw auditFailed(`cannot take the audit lock ${lockPath}: ${errorText(err)}`, err);
    }
    const owner = Number(await readFile(lockPath, 'utf8').catch(() => ''));
    if (Number.isInteger(owner) && owner > 0 && !processAlive(owner)) {
      await unlink(lockPath).catch(() => undefined);
      continue;
    }
    if (Date.now() > deadline) throw auditFailed(`the audit lock ${lockPath} is held by process ${owner || 'unknown'} for more than 5 s`);
    await new Promise((r) => setTimeout(r, 2));
  }
}

function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

async function syncDirectory(dir: string): Promise<void> {
  const fh = await open(dir, 'r');
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}
