// Promise API over ssh2's SFTP client: stat, list, read in parallel chunks, and atomic writes
// (temp file in the same directory, size checked, then posix-rename).
import { createHash } from 'node:crypto';
import { posix } from 'node:path';
import type { SFTPWrapper, Stats, FileEntryWithStats, OpenMode } from 'ssh2';
import { SshgateError } from '../errors.js';
import type { ResolvedHost } from '../config/load.js';
import { checkRemotePath, type PathRules } from '../policy/path-policy.js';
import { mapSftpError } from './map-error.js';
import { abortable, classifyOpenError, ChannelOpenError, type ConnectionPool } from './pool.js';
import { randomToken } from './exec.js';

/** SFTP status code for end of file (draft-ietf-secsh-filexfer-02 section 7). */
const SFTP_EOF = 1;
const SFTP_NO_SUCH_FILE = 2;

type Cb<T> = (err: Error | undefined | null, value: T) => void;

function call<T>(op: string, path: string, fn: (cb: Cb<T>) => void): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    try {
      fn((err, value) => {
        if (err !== undefined && err !== null) reject(mapSftpError(err, op, path));
        else resolve(value);
      });
    } catch (err) {
      reject(mapSftpError(err, op, path));
    }
  });
}

/** Thin promise wrappers; every error is mapped with {@link mapSftpError}. */
export const sftpOps = {
  stat: (s: SFTPWrapper, p: string) => call<Stats>('stat', p, (cb) => {
    s.stat(p, cb);
  }),
  lstat: (s: SFTPWrapper, p: string) => call<Stats>('lstat', p, (cb) => {
    s.lstat(p, cb);
  }),
  realpath: (s: SFTPWrapper, p: string) => call<string>('realpath', p, (cb) => {
    s.realpath(p, cb);
  }),
  readlink: (s: SFTPWrapper, p: string) => call<string>('readlink', p, (cb) => {
    s.readlink(p, cb);
  }),
  readdir: (s: SFTPWrapper, p: string) => call<FileEntryWithStats[]>('readdir', p, (cb) => {
    s.readdir(p, cb);
  }),
  open: (s: SFTPWrapper, p: string, flags: OpenMode, mode?: number) =>
    call<Buffer>('open', p, (cb) => {
      if (mode === undefined) s.open(p, flags, cb);
      else s.open(p, flags, { mode }, cb);
    }),
  close: (s: SFTPWrapper, h: Buffer, p: string) => call<undefined>('close', p, (cb) => {
    s.close(h, (err) => {
      cb(err, undefined);
    });
  }),
  fstat: (s: SFTPWrapper, h: Buffer, p: string) => call<Stats>('fstat', p, (cb) => {
    s.fstat(h, cb);
  }),
  setstat: (s: SFTPWrapper, p: string, attrs: { mode?: number; uid?: number; gid?: number }) =>
    call<undefined>('setstat', p, (cb) => {
    s.setstat(p, attrs, (err) => {
      cb(err, undefined);
    });
  }),
  unlink: (s: SFTPWrapper, p: string) => call<undefined>('unlink', p, (cb) => {
    s.unlink(p, (err) => {
      cb(err, undefined);
    });
  }),
  rename: (s: SFTPWrapper, from: string, to: string) => call<undefined>('rename', to, (cb) => {
    s.rename(from, to, (err) => {
      cb(err, undefined);
    });
  }),
  posixRename: (s: SFTPWrapper, from: string, to: string) =>
    call<undefined>('rename', to, (cb) => {
    s.ext_openssh_rename(from, to, (err) => {
      cb(err, undefined);
    });
  }),
  mkdir: (s: SFTPWrapper, p: string, mode?: number) =>
    call<undefined>('mkdir', p, (cb) => {
    s.mkdir(p, mode === undefined ? {} : { mode }, (err) => {
      cb(err, undefined);
    });
  }),
  write: (s: SFTPWrapper, h: Buffer, data: Buffer, position: number, p: string) =>
    call<undefined>('write', p, (cb) => {
    s.write(h, data, 0, data.length, position, (err) => {
      cb(err, undefined);
    });
  }),
};

/** Reads up to `length` bytes at `position`; returns an empty buffer at end of file. */
function readAt(s: SFTPWrapper, h: Buffer, position: number, length: number, p: string): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const buf = Buffer.allocUnsafe(length);
    try {
      s.read(h, buf, 0, length, position, (err: (Error & { code?: number }) | undefined, bytesRead: number) => {
        if (err) {
          if (err.code === SFTP_EOF) resolve(Buffer.alloc(0));
          else reject(mapSftpError(err, 'read', p));
          return;
        }
        resolve(buf.subarray(0, bytesRead));
      });
    } catch (err) {
      reject(mapSftpError(err, 'read', p));
    }
  });
}

/**
 * Yields the bytes of an open file in order from `start` until end of file, keeping up to `concurrency`
 * reads of `chunkSize` in flight (ssh2's one-at-a-time streams manage ~20 MiB/s; parallel reads saturate
 * the link). Reads are driven by end of file, never by the reported size alone, so zero-size pseudo-files
 * such as /proc/cpuinfo are read completely.
 */
export async function* readChunks(
  s: SFTPWrapper,
  h: Buffer,
  p: string,
  start: number,
  knownSize: number,
  signal: AbortSignal,
  chunkSize = 64 * 1024,
  concurrency = 8,
): AsyncGenerator<Buffer> {
  let next = start;
  const inflight: Promise<Buffer>[] = [];
  const parallel = knownSize > start;
  const fill = (): void => {
    const limit = parallel ? concurrency : 1;
    while (inflight.length < limit && (inflight.length === 0 || next < knownSize)) {
      const read = readAt(s, h, next, chunkSize, p);
      read.catch(() => undefined);
      inflight.push(read);
      next += chunkSize;
    }
  };
  fill();
  let position = start;
  while (inflight.length > 0) {
    if (signal.aborted) throw abortReason(signal);
    const chunk = await (inflight.shift() as Promise<Buffer>);
    if (chunk.length === 0) return;
    yield chunk;
    position += chunk.length;
    if (chunk.length < chunkSize) {
      // A short read: the file ended (or shrank). Restart sequentially from where the data stopped.
      inflight.length = 0;
      next = position;
    }
    fill();
  }
}

function abortReason(signal: AbortSignal): SshgateError {
  const reason: unknown = signal.reason;
  return reason instanceof SshgateError ? reason : new SshgateError('CANCELLED', 'the call was cancelled');
}

/** Runs `fn` with the SFTP session of a pooled connection to `host`. */
export async function withSftp<T>(pool: ConnectionPool, host: ResolvedHost, signal: AbortSignal, fn: (sftp: SFTPWrapper) => Promise<T>): Promise<T> {
  return pool.withChannel(host, signal, async (lease) => {
    let sftp: SFTPWrapper;
    try {
      sftp = await abortable(lease.conn.sftp(), signal);
    } catch (err) {
      if (signal.aborted) throw err;
      const cause = err instanceof SshgateError && err.cause instanceof Error ? err.cause : (err as Error);
      throw cause instanceof ChannelOpenError ? cause : classifyOpenError(cause);
    }
    // An SFTP request the server never answers must not outlive the call's timeout.
    return abortable(fn(sftp), signal);
  });
}

/** The path rules of a host, in the shape the pure path policy takes. */
export function pathRules(host: ResolvedHost): PathRules {
  return { roots: host.roots, restricted_paths: host.restrictedPaths };
}

function denyPath(host: ResolvedHost, decision: { rule: string; message: string }, what: string): SshgateError {
  return new SshgateError('PATH_DENIED', `${host.alias}: ${what}${decision.message}`, { details: { rule: decision.rule } });
}

/** The lexical path check of the host's policy; returns the normalised path. */
export function lexicalPath(host: ResolvedHost, path: string): string {
  const decision = checkRemotePath(path, pathRules(host));
  if (!decision.allowed) throw denyPath(host, decision, '');
  return decision.path;
}

function hasPathRules(host: ResolvedHost): boolean {
  return host.roots.length > 0 || host.restrictedPaths.length > 0;
}

/** Checks a resolved (real) path against the host's roots again; symlinks must not lead out. */
function checkReal(host: ResolvedHost, requested: string, real: string): void {
  const decision = checkRemotePath(real, pathRules(host));
  if (!decision.allowed) throw denyPath(host, decision, `${requested} resolves to ${real}: `);
}

/**
 * Resolves an existing path for reading: lexical check, then the remote realpath (symlinks followed) must
 * pass the same check. Returns the real path.
 * @throws SshgateError PATH_DENIED, REMOTE_NOT_FOUND.
 */
export async function confineExisting(sftp: SFTPWrapper, host: ResolvedHost, path: string): Promise<string> {
  const lexical = lexicalPath(host, path);
  if (!hasPathRules(host)) return lexical;
  const real = await sftpOps.realpath(sftp, lexical);
  checkReal(host, lexical, real);
  return real;
}

/** Where an atomic write will land. */
export interface WriteTarget {
  /** The real path written (a symlink at the requested path is followed, inside the roots). */
  path: string;
  /** Real path of the directory holding it. */
  dir: string;
  existing: Stats | null;
}

/**
 * Resolves a path for writing: lexical check; realpath of the parent (SFTP realpath returns a missing last
 * component unchanged, so the parent is resolved instead); `lstat` of the final component; a symlink is
 * followed only when its real target passes the check too.
 * @throws SshgateError PATH_DENIED, REMOTE_NOT_FOUND (parent missing), REMOTE_FAILURE (a directory at the path).
 */
export async function confineForWrite(sftp: SFTPWrapper, host: ResolvedHost, path: string): Promise<WriteTarget> {
  const lexical = lexicalPath(host, path);
  if (lexical === '/') throw new SshgateError('INVALID_INPUT', 'path: / is a directory');
  const parent = posix.dirname(lexical);
  const dir = await sftpOps.realpath(sftp, parent);
  if (hasPathRules(host)) checkReal(host, parent, dir);
  let target = posix.join(dir, posix.basename(lexical));
  let existing: Stats | null = null;
  try {
    existing = await sftpOps.lstat(sftp, target);
  } catch (err) {
    if (!(err instanceof SshgateError && err.code === 'REMOTE_NOT_FOUND')) throw err;
  }
  if (existing?.isSymbolicLink() === true) {
    const real = await sftpOps.realpath(sftp, target);
    if (hasPathRules(host)) checkReal(host, lexical, real);
    target = real;
    existing = await sftpOps.lstat(sftp, target);
  }
  if (existing?.isDirectory() === true) throw new SshgateError('REMOTE_FAILURE', `${lexical} is a directory`);
  return { path: target, dir: posix.dirname(target), existing };
}

/** Result of {@link writeAtomic}. */
export interface WriteOutcome {
  path: string;
  bytes: number;
  created: boolean;
  mode: number;
  /** False when the remote account could not give the new file the old owner (not root). */
  owner_preserved: boolean;
}

/**
 * Writes `data` to `target` atomically: a temp file `.<name>.sshgate-<random>.tmp` is created exclusively in
 * the same directory, written with parallel requests, its size checked with `fstat` (ssh2's write stream
 * can end silently truncated on a full disk), mode and owner of an existing file copied, the directory's
 * real path checked again (the race SFTP cannot close), then `posix-rename@openssh.com` replaces the file.
 * On any failure the temp file is removed and the old file is untouched.
 * @throws SshgateError REMOTE_FAILURE (short write), PATH_DENIED (directory moved), SFTP errors.
 */
export async function writeAtomic(
  sftp: SFTPWrapper,
  host: ResolvedHost,
  target: WriteTarget,
  data: Buffer,
  options: { mode?: number; signal: AbortSignal },
): Promise<WriteOutcome> {
  const tmp = posix.join(target.dir, `.${posix.basename(target.path)}.sshgate-${randomToken(6)}.tmp`);
  const mode = options.mode ?? (target.existing === null ? 0o644 : target.existing.mode & 0o7777);
  const handle = await sftpOps.open(sftp, tmp, 'wx', 0o600);
  let open = true;
  try {
    const chunk = 256 * 1024;
    const writes: Promise<undefined>[] = [];
    for (let offset = 0; offset < data.length; offset += chunk) {
      if (options.signal.aborted) throw abortReason(options.signal);
      writes.push(sftpOps.write(sftp, handle, data.subarray(offset, offset + chunk), offset, tmp));
      if (writes.length >= 8) await writes.shift();
    }
    await Promise.all(writes);
    const written = await sftpOps.fstat(sftp, handle, tmp);
    if (written.size !== data.length) {
      throw new SshgateError('REMOTE_FAILURE', `short write to ${target.path}: ${written.size} of ${data.length} bytes reached the disk (disk full?); the file was not replaced`);
    }
    open = false;
    await sftpOps.close(sftp, handle, tmp);
    await sftpOps.setstat(sftp, tmp, { mode });
    let ownerPreserved = true;
    if (target.existing !== null && (target.existing.uid !== written.uid || target.existing.gid !== written.gid)) {
      try {
        await sftpOps.setstat(sftp, tmp, { uid: target.existing.uid, gid: target.existing.gid });
      } catch {
        ownerPreserved = false;
      }
    }
    // Security: the directory could have been swapped for a symlink since it was checked.
    const dirNow = await sftpOps.realpath(sftp, target.dir);
    if (dirNow !== target.dir) throw new SshgateError('PATH_DENIED', `${target.dir} changed while writing (now resolves to ${dirNow}); the file was not replaced`);
    if (hasPathRules(host)) checkReal(host, target.dir, dirNow);
    if (options.signal.aborted) throw abortReason(options.signal);
    try {
      await sftpOps.posixRename(sftp, tmp, target.path);
    } catch (err) {
      if (target.existing !== null) throw err;
      await sftpOps.rename(sftp, tmp, target.path);
    }
    return { path: target.path, bytes: data.length, created: target.existing === null, mode, owner_preserved: ownerPreserved };
  } catch (err) {
    if (open) await sftpOps.close(sftp, handle, tmp).catch(() => undefined);
    await sftpOps.unlink(sftp, tmp).catch(() => undefined);
    throw err;
  }
}

/** Options of {@link readText}. */
export interface ReadOptions {
  /** 1-based first line to return. */
  startLine?: number;
  /** Number of lines to return from `startLine`. */
  lineCount?: number;
  /** Byte offset to start from (exclusive with line ranges). */
  offset?: number;
  /** Cap on bytes returned. */
  maxBytes: number;
  /** Files up to this size are read whole so that their sha256 can be given. */
  hashLimitBytes: number;
  encoding: 'utf8' | 'base64';
  signal: AbortSignal;
}

/** What {@link readText} returns. */
export interface ReadOutcome {
  path: string;
  size: number;
  content: string;
  encoding: 'utf8' | 'base64';
  bytes: number;
  truncated: boolean;
  start_line: number | null;
  end_line: number | null;
  /** sha256 of the whole file when it was read to its end from byte 0, else null. */
  sha256: string | null;
  next_offset: number | null;
}

/**
 * Reads part of a file: a line range or a byte range, capped at `maxBytes`, reading until end of file
 * (not the reported size). The sha256 of the whole file is computed when the file is read from the start
 * to its end (files up to `hashLimitBytes` are read whole for this).
 * @throws SshgateError INVALID_INPUT for a binary file read as utf8, SFTP errors.
 */
export async function readText(sftp: SFTPWrapper, path: string, options: ReadOptions): Promise<ReadOutcome> {
  const handle = await sftpOps.open(sftp, path, 'r');
  try {
    const stats = await sftpOps.fstat(sftp, handle, path);
    if (stats.isDirectory()) throw new SshgateError('INVALID_INPUT', `${path} is a directory; use ssh_list_directory`);
    const byteMode = options.startLine === undefined && options.lineCount === undefined;
    const start = byteMode ? (options.offset ?? 0) : 0;
    const hash = start === 0 ? createHash('sha256') : null;
    const wantWhole = stats.size <= options.hashLimitBytes;
    const kept: Buffer[] = [];
    let keptBytes = 0;
    let truncated = false;
    let reachedEnd = true;
    let position = start;
    // Line bookkeeping (line mode only).
    const firstLine = options.startLine ?? 1;
    const lastLine = options.lineCount === undefined ? Number.POSITIVE_INFINITY : firstLine + options.lineCount - 1;
    let line = 1;
    let endLine = 0;
    let doneCollecting = false;

    for await (const chunk of readChunks(sftp, handle, path, start, stats.size, options.signal)) {
      hash?.update(chunk);
      position += chunk.length;
      if (!doneCollecting) {
        if (byteMode) {
          const room = options.maxBytes - keptBytes;
          const take = chunk.subarray(0, Math.max(0, room));
          kept.push(take);
          keptBytes += take.length;
          if (take.length < chunk.length) {
            truncated = true;
            doneCollecting = true;
          }
        } else {
          let from = 0;
          for (let i = 0; i < chunk.length && !doneCollecting; i += 1) {
            if (chunk[i] !== 0x0a) continue;
            if (line >= firstLine && line <= lastLine) {
              const piece = chunk.subarray(from, i + 1);
              if (keptBytes + piece.length > options.maxBytes) {
                truncated = true;
                doneCollecting = true;
                break;
              }
              kept.push(piece);
              keptBytes += piece.length;
              endLine = line;
            }
            line += 1;
            from = i + 1;
            if (line > lastLine) doneCollecting = true;
          }
          if (!doneCollecting && line >= firstLine && from < chunk.length) {
            // Part of a line that continues in the next chunk: keep it provisionally.
            const piece = chunk.subarray(from);
            if (keptBytes + piece.length > options.maxBytes) {
              truncated = true;
              doneCollecting = true;
            } else {
              kept.push(piece);
              keptBytes += piece.length;
              endLine = line;
            }
          }
        }
      }
      if (doneCollecting && !(wantWhole && hash !== null)) {
        reachedEnd = false;
        break;
      }
    }
    const content = Buffer.concat(kept);
    if (options.encoding === 'utf8' && content.subarray(0, 8192).includes(0)) {
      throw new SshgateError('INVALID_INPUT', `${path} looks binary (it contains NUL bytes); read it with encoding: "base64"`);
    }
    return {
      path,
      size: Math.max(stats.size, reachedEnd ? position : stats.size),
      content: options.encoding === 'base64' ? content.toString('base64') : content.toString('utf8'),
      encoding: options.encoding,
      bytes: content.length,
      truncated,
      start_line: byteMode ? null : firstLine,
      end_line: byteMode ? null : endLine === 0 ? null : endLine,
      sha256: reachedEnd && hash !== null ? hash.digest('hex') : null,
      next_offset: byteMode && truncated ? start + content.length : null,
    };
  } finally {
    await sftpOps.close(sftp, handle, path).catch(() => undefined);
  }
}

/** True when `err` is an SFTP "no such file" error. */
export function isNotFound(err: unknown): boolean {
  return (err instanceof SshgateError && err.code === 'REMOTE_NOT_FOUND') || (err as { code?: number } | null)?.code === SFTP_NO_SUCH_FILE;
}
