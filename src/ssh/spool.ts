// The full output of commands whose output went past the reply cap, kept on our side in a bounded on-disk spool
// so the model can page or grep it (ssh_read_output) instead of receiving megabytes at once.
import { randomBytes } from 'node:crypto';
import { closeSync, mkdirSync, mkdtempSync, openSync, readSync, rmSync, statSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SshgateError } from '../errors.js';

/** Limits of the spool (config `spool`). */
export interface SpoolLimits {
  /** Bytes kept per stream of one command; later bytes are counted but dropped. */
  maxOutputBytes: number;
  /** Bytes kept in all; the oldest outputs are removed to make room. */
  maxTotalBytes: number;
  /** Outputs older than this are removed. */
  maxAgeMs: number;
}

export type StreamName = 'stdout' | 'stderr';

interface Entry {
  id: string;
  host: string;
  createdAt: number;
  bytes: Record<StreamName, number>;
  /** Bytes the command wrote per stream, kept or not. */
  total: Record<StreamName, number>;
  complete: boolean;
}

/** Writes one command's output into the spool. Synchronous appends keep memory bounded whatever the volume. */
export interface SpoolWriter {
  readonly id: string;
  write(stream: StreamName, chunk: Buffer): void;
  finish(): void;
}

/** A page of spooled output. */
export interface SpoolPage {
  output_id: string;
  stream: StreamName;
  offset: number;
  bytes: number;
  total_bytes: number;
  /** Bytes the command produced on this stream; more than total_bytes when the spool cap cut it. */
  produced_bytes: number;
  content: string;
  next_offset: number | null;
}

/**
 * An on-disk spool in a private directory (0700, removed at close). Ids are random and checked on every use.
 */
export class OutputSpool {
  private readonly dir: string;
  private readonly entries = new Map<string, Entry>();

  constructor(private readonly limits: SpoolLimits) {
    const base = join(tmpdir(), 'sshgate-spool');
    mkdirSync(base, { recursive: true, mode: 0o700 });
    this.dir = mkdtempSync(join(base, `${process.pid}-`));
  }

  private file(id: string, stream: StreamName): string {
    return join(this.dir, `${id}.${stream}`);
  }

  /** Starts spooling a new output for `host`. */
  create(host: string): SpoolWriter {
    this.evict();
    const id = `out_${randomBytes(9).toString('hex')}`;
    const entry: Entry = { id, host, createdAt: Date.now(), bytes: { stdout: 0, stderr: 0 }, total: { stdout: 0, stderr: 0 }, complete: false };
    this.entries.set(id, entry);
    const fds: Partial<Record<StreamName, number>> = {};
    return {
      id,
      write: (stream, chunk) => {
        entry.total[stream] += chunk.length;
        const room = this.limits.maxOutputBytes - entry.bytes[stream];
        if (room <= 0 || !this.entries.has(id)) return;
        const part = chunk.length > room ? chunk.subarray(0, room) : chunk;
        fds[stream] ??= openSync(this.file(id, stream), 'a', 0o600);
        writeSync(fds[stream], part);
        entry.bytes[stream] += part.length;
      },
      finish: () => {
        for (const fd of Object.values(fds)) closeSync(fd);
        entry.complete = true;
        this.evict();
      },
    };
  }

  private get(id: string, host: string): Entry {
    const entry = /^out_[0-9a-f]{18}$/u.test(id) ? this.entries.get(id) : undefined;
    if (entry?.host !== host) {
      throw new SshgateError('REMOTE_NOT_FOUND', `no spooled output ${JSON.stringify(id.slice(0, 40))} for host ${host} (it expired, or came from another server instance)`);
    }
    return entry;
  }

  /**
   * Reads `limit` bytes from `offset` of a stream (cut back to whole UTF-8 characters).
   * @throws SshgateError REMOTE_NOT_FOUND for an unknown or expired id.
   */
  read(id: string, host: string, stream: StreamName, offset: number, limit: number): SpoolPage {
    const entry = this.get(id, host);
    const total = entry.bytes[stream];
    const start = Math.min(offset, total);
    const length = Math.min(limit, total - start);
    let buf = Buffer.alloc(0);
    if (length > 0) {
      buf = Buffer.alloc(length);
      const fd = openSync(this.file(id, stream), 'r');
      try {
        readSync(fd, buf, 0, length, start);
      } finally {
        closeSync(fd);
      }
      // Do not split a multi-byte UTF-8 character at the end of the page.
      let end = buf.length;
      if (start + end < total) {
        let back = 0;
        while (back < 3 && end - back > 0 && ((buf[end - back - 1] ?? 0) & 0xc0) === 0x80) back += 1;
        if (end - back > 0 && ((buf[end - back - 1] ?? 0) & 0xc0) === 0xc0) end -= back + 1;
      }
      buf = buf.subarray(0, end);
    }
    const next = start + buf.length;
    return {
      output_id: id,
      stream,
      offset: start,
      bytes: buf.length,
      total_bytes: total,
      produced_bytes: entry.total[stream],
      content: buf.toString('utf8'),
      next_offset: next < total ? next : null,
    };
  }

  /**
   * Lines of a stream matching `pattern` (a JavaScript regex), with `context` lines around each, up to
   * `maxMatches`. Lines are numbered from 1.
   */
  grep(id: string, host: string, stream: StreamName, pattern: RegExp, context: number, maxMatches: number): { matches: { line: number; text: string; match: boolean }[]; match_count: number; truncated: boolean } {
    const entry = this.get(id, host);
    const total = entry.bytes[stream];
    const out: { line: number; text: string; match: boolean }[] = [];
    let count = 0;
    let truncated = false;
    const before: { line: number; text: string }[] = [];
    let after = 0;
    let lineNo = 0;
    let lastEmitted = 0;
    const emit = (line: number, text: string, match: boolean): void => {
      if (line <= lastEmitted) return;
      out.push({ line, text: text.length > 2000 ? `${text.slice(0, 2000)}...` : text, match });
      lastEmitted = line;
    };
    const onLine = (text: string): boolean => {
      lineNo += 1;
      pattern.lastIndex = 0;
      if (pattern.test(text)) {
        count += 1;
        if (count > maxMatches) {
          truncated = true;
          return false;
        }
        for (const b of before) emit(b.line, b.text, false);
        before.length = 0;
        emit(lineNo, text, true);
        after = context;
        return true;
      }
      if (after > 0) {
        after -= 1;
        emit(lineNo, text, false);
        return true;
      }
      before.push({ line: lineNo, text });
      if (before.length > context) before.shift();
      return true;
    };
    if (total > 0) {
      const fd = openSync(this.file(id, stream), 'r');
      try {
        const chunk = Buffer.alloc(256 * 1024);
        let carry = '';
        let position = 0;
        let going = true;
        while (going && position < total) {
          const n = readSync(fd, chunk, 0, Math.min(chunk.length, total - position), position);
          if (n <= 0) break;
          position += n;
          const text = carry + chunk.subarray(0, n).toString('utf8');
          const lines = text.split('\n');
          carry = lines.pop() ?? '';
          for (const l of lines) {
            if (!onLine(l)) {
              going = false;
              break;
            }
          }
        }
        if (going && carry !== '') onLine(carry);
      } finally {
        closeSync(fd);
      }
    }
    return { matches: out, match_count: Math.min(count, maxMatches), truncated };
  }

  /** Removes expired outputs, then the oldest ones while the spool is over its total size. */
  private evict(): void {
    const now = Date.now();
    let size = 0;
    const live = [...this.entries.values()].sort((a, b) => a.createdAt - b.createdAt);
    for (const entry of live) size += entry.bytes.stdout + entry.bytes.stderr;
    for (const entry of live) {
      const old = now - entry.createdAt > this.limits.maxAgeMs;
      if (!old && size <= this.limits.maxTotalBytes) continue;
      if (!entry.complete && !old) continue;
      size -= entry.bytes.stdout + entry.bytes.stderr;
      this.remove(entry.id);
    }
  }

  private remove(id: string): void {
    this.entries.delete(id);
    for (const stream of ['stdout', 'stderr'] as const) rmSync(this.file(id, stream), { force: true });
  }

  /** Bytes on disk (for tests and the bench). */
  diskBytes(): number {
    let n = 0;
    for (const entry of this.entries.values()) {
      for (const stream of ['stdout', 'stderr'] as const) {
        try {
          n += statSync(this.file(entry.id, stream)).size;
        } catch {
          // not written yet
        }
      }
    }
    return n;
  }

  /** Deletes everything. */
  close(): void {
    this.entries.clear();
    rmSync(this.dir, { recursive: true, force: true });
  }
}
