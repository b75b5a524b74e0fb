// Promise API over ssh2's SFTP client: stat, list, read in parallel chunks, confinement of paths to a host's
// roots, and atomic writes (temp file in the same directory, size and digest verified, then posix-rename).
import { createHash } from 'node:crypto';
import type { SFTPWrapper, Stats, FileEntryWithStats, OpenMode } from 'ssh2';
import { SshgateError } from '../errors.js';
import type { ResolvedHost } from '../config/load.js';
import type { PathRules } from '../policy/path-policy.js';
import { mapSftpError } from './map-error.js';
import { abortable, classifyOpenError, ChannelOpenError, type ConnectionPool, type PooledConnection } from './pool.js';
import { execOnConnection, randomToken } from './exec.js';
import { shellQuote } from '../policy/shell-quote.js';
import { personalityOf } from './personality.js';

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
  rmdir: (s: SFTPWrapper, p: string) => call<undefined>('rmdir', p, (cb) => {
    s.rmdir(p, (err) => {
      cb(err, undefined);
    });
  }),
  /** Creates a symlink at `linkPath` pointing to `target` (ssh2 swaps the arguments for OpenSSH). */
  symlink: (s: SFTPWrapper, target: string, linkPath: string) => call<undefined>('symlink', linkPath, (cb) => {
    s.symlink(target, linkPath, (err) => {
      cb(err, undefined);
    });
  }),
  utimes: (s: SFTPWrapper, p: string, atime: number, mtime: number) => call<undefined>('utimes', p, (cb) => {
    s.utimes(p, atime, mtime, (err) => {
      cb(err, undefined);
    });
  }),
  /** `hardlink@openssh.com`; check {@link hasExtension} first. */
  hardlink: (s: SFTPWrapper, existing: string, linkPath: string) => call<undefined>('hardlink', linkPath, (cb) => {
    s.ext_openssh_hardlink(existing, linkPath, (err) => {
      cb(err, undefined);
    });
  }),
  /** `fsync@openssh.com`; check {@link hasExtension} first. */
  fsync: (s: SFTPWrapper, h: Buffer, p: string) => call<undefined>('fsync', p, (cb) => {
    s.ext_openssh_fsync(h, (err) => {
      cb(err, undefined);
    });
  }),
  /** `statvfs@openssh.com` (version 2): free bytes of the file system holding `p`, for an unprivileged user. */
  statvfs: (s: SFTPWrapper, p: string) => call<{ freeBytes: number }>('statvfs', p, (cb) => {
    s.ext_openssh_statvfs(p, (err, info: { f_bavail?: number | bigint; f_frsize?: number | bigint } | undefined) => {
      cb(err, { freeBytes: Number(info?.f_bavail ?? 0) * Number(info?.f_frsize ?? 0) });
    });
  }),
  /** `copy-data` (server-side copy); `length` 0 copies until end of file. Check {@link hasExtension} first. */
  copyData: (s: SFTPWrapper, from: Buffer, to: Buffer, length: number, p: string) => call<undefined>('copy-data', p, (cb) => {
    s.ext_copy_data(from, 0, length, to, 0, (err) => {
      cb(err, undefined);
    });
  }),
};

/**
 * True when the server announced the SFTP extension `name` (e.g. `copy-data`, `hardlink@openssh.com`,
 * `fsync@openssh.com`) in the version ssh2 speaks (`statvfs@openssh.com` is version 2). ssh2 keeps the announced extensions in a field it does not type; a missing field
 * reads as "not supported", so callers fall back to the plain protocol.
 */
export function hasExtension(s: SFTPWrapper, name: string, version = '1'): boolean {
  const extensions = (s as unknown as { _extensions?: Record<string, string> })._extensions;
  return extensions?.[name] === version;
}

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
export async function withSftp<T>(
  pool: ConnectionPool,
  host: ResolvedHost,
  signal: AbortSignal,
  fn: (sftp: SFTPWrapper, conn: PooledConnection) => Promise<T>,
  options: { idempotent?: boolean } = {},
): Promise<T> {
  return pool.withChannel(
    host,
    signal,
    async (lease) => {
    let sftp: SFTPWrapper;
    try {
      sftp = await abortable(lease.conn.sftp(), signal);
    } catch (err) {
      if (signal.aborted) throw err;
      const cause = err instanceof SshgateError && err.cause instanceof Error ? err.cause : (err as Error);
      throw cause instanceof ChannelOpenError ? cause : classifyOpenError(cause);
    }
    // An SFTP request the server never answers must not outlive the call's timeout.
    return abortable(fn(sftp, lease.conn), signal);
    },
    options,
  );
}

/** The path rules of a host, in the shape the pure path policy takes. */
export function pathRules(host: ResolvedHost): PathRules {
  return { roots: host.roots, restricted_paths: host.restrictedPaths };
}

function denyPath(host: ResolvedHost, decision: { rule: string; message: string }, what: string): SshgateError {
  return new SshgateError('PATH_DENIED', `${host.alias}: ${what}${decision.message}`, { details: { rule: decision.rule } });
}

/**
 * The lexical path check of the host's policy, with the host's path personality (POSIX, or Windows paths
 * such as `C:\x` canonicalised to `/C:/x` and compared without regard to case); returns the normalised path.
 * @throws SshgateError PATH_DENIED naming the rule.
 */
export function lexicalPath(host: ResolvedHost, path: string): string {
  const decision = personalityOf(host).check(path, pathRules(host));
  if (!decision.allowed) throw denyPath(host, decision, '');
  return decision.path;
}

function hasPathRules(host: ResolvedHost): boolean {
  return host.roots.length > 0 || host.restrictedPaths.length > 0;
}

/** Checks a resolved (real) path against the host's roots again; symlinks must not lead out. */
function checkReal(host: ResolvedHost, requested: string, real: string): void {
  if (!hasPathRules(host)) return;
  const decision = personalityOf(host).check(real, pathRules(host));
  if (!decision.allowed) throw denyPath(host, decision, requested === real ? '' : `${requested} resolves to ${real}: `);
}

/**
 * Checks a path found on the host (a walk entry, a realpath answer) against the host's rules.
 * @throws SshgateError PATH_DENIED naming the rule (a restricted path inside a tree, a symlink out of the roots).
 */
export function assertAllowed(host: ResolvedHost, path: string): void {
  checkReal(host, path, path);
}

/** True when `path` passes the host's rules (used by walks that skip, rather than refuse, restricted entries). */
export function isAllowed(host: ResolvedHost, path: string): boolean {
  return !hasPathRules(host) || personalityOf(host).check(path, pathRules(host)).allowed;
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
 * component unchanged, so the parent is resolved instead) and of the joined path, both checked again; `lstat`
 * of the final component; a symlink is followed only when its real target passes the check too.
 * @throws SshgateError PATH_DENIED, REMOTE_NOT_FOUND (parent missing), REMOTE_FAILURE (a directory at the path).
 */
export async function confineForWrite(sftp: SFTPWrapper, host: ResolvedHost, path: string): Promise<WriteTarget> {
  const personality = personalityOf(host);
  const lexical = lexicalPath(host, path);
  if (personality.isRoot(lexical)) throw new SshgateError('INVALID_INPUT', `path: ${lexical} is a directory`);
  const parent = personality.dirname(lexical);
  const dir = await sftpOps.realpath(sftp, parent);
  checkReal(host, parent, dir);
  let target = personality.join(dir, personality.basename(lexical));
  // Security: a symlinked parent can lead to a restricted path that the lexical check never saw.
  checkReal(host, lexical, target);
  let existing: Stats | null = null;
  try {
    existing = await sftpOps.lstat(sftp, target);
  } catch (err) {
    if (!isNotFound(err)) throw err;
  }
  if (existing?.isSymbolicLink() === true) {
    const real = await sftpOps.realpath(sftp, target);
    checkReal(host, lexical, real);
    target = real;
    existing = await sftpOps.lstat(sftp, target);
  }
  if (existing?.isDirectory() === true) throw new SshgateError('REMOTE_FAILURE', `${lexical} is a directory`);
  return { path: target, dir: personality.dirname(target), existing };
}

/** A path resolved without following its last component (see {@link confineEntry}). */
export interface EntryTarget {
  /** Real path of the parent joined with the last component (a symlink there is the link itself). */
  path: string;
  /** Real path of the parent directory. */
  dir: string;
  /** `lstat` of the entry; null when nothing is there. */
  stats: Stats | null;
}

/**
 * Resolves a path whose last component must not be followed (remove, move, the destination of a copy):
 * lexical check, realpath of the parent, both checked again against the rules, then `lstat` of the entry.
 * A symlink at the path is reported as a symlink.
 * @throws SshgateError PATH_DENIED, REMOTE_NOT_FOUND (parent missing), INVALID_INPUT (a file system root).
 */
export async function confineEntry(sftp: SFTPWrapper, host: ResolvedHost, path: string): Promise<EntryTarget> {
  const personality = personalityOf(host);
  const lexical = lexicalPath(host, path);
  if (personality.isRoot(lexical)) throw new SshgateError('INVALID_INPUT', `path: ${lexical} is the root of the file system`);
  const parent = personality.dirname(lexical);
  const dir = await sftpOps.realpath(sftp, parent);
  checkReal(host, parent, dir);
  const target = personality.join(dir, personality.basename(lexical));
  checkReal(host, lexical, target);
  let stats: Stats | null = null;
  try {
    stats = await sftpOps.lstat(sftp, target);
  } catch (err) {
    if (!isNotFound(err)) throw err;
  }
  return { path: target, dir, stats };
}

/**
 * Creates `path` and its missing parents (`mkdir -p`), each directory inside the host's rules: the deepest
 * existing ancestor is resolved with realpath, and every directory is created inside the real path of its
 * parent after that joined path has passed the rules (a symlinked ancestor cannot lead the creation out of
 * the roots). New directories get `mode` (set explicitly, so the remote umask does not apply).
 * Returns the real path and the directories created, outermost first.
 * @throws SshgateError PATH_DENIED, REMOTE_FAILURE (a file in the way), SFTP errors.
 */
export async function mkdirParents(sftp: SFTPWrapper, host: ResolvedHost, path: string, mode: number): Promise<{ path: string; created: string[] }> {
  const personality = personalityOf(host);
  const lexical = lexicalPath(host, path);
  const chain: string[] = [];
  let existing = lexical;
  for (;;) {
    try {
      await sftpOps.lstat(sftp, existing);
      break;
    } catch (err) {
      if (!isNotFound(err) || personality.isRoot(existing)) throw err;
      chain.unshift(personality.basename(existing));
      existing = personality.dirname(existing);
    }
  }
  let current = await sftpOps.realpath(sftp, existing);
  if (chain.length === 0) checkReal(host, lexical, current);
  const kind = await sftpOps.stat(sftp, current);
  if (!kind.isDirectory()) throw new SshgateError('REMOTE_FAILURE', `${existing} exists and is not a directory`);
  const created: string[] = [];
  for (const name of chain) {
    const next = personality.join(current, name);
    checkReal(host, lexical, next);
    try {
      await sftpOps.mkdir(sftp, next, mode);
      created.push(next);
      await sftpOps.setstat(sftp, next, { mode });
    } catch (err) {
      // Another writer may have created it in between: fine when it is a directory.
      const st = await sftpOps.lstat(sftp, next).catch(() => null);
      if (st === null || !st.isDirectory()) throw err;
    }
    current = await sftpOps.realpath(sftp, next);
    checkReal(host, lexical, current);
  }
  return { path: current, created };
}

/** Largest write whose sha256 is verified by reading the temp file back (beyond it, the size is verified). */
export const VERIFY_DIGEST_MAX_BYTES = 8 * 1024 * 1024;

/** Result of {@link writeAtomic} and {@link writeAtomicWith}. */
export interface WriteOutcome {
  path: string;
  bytes: number;
  created: boolean;
  mode: number;
  /** False when the remote account could not give the new file the old owner (not root). */
  owner_preserved: boolean;
  /** sha256 of the content written, when known. */
  sha256: string | null;
  /** What was checked on the temp file before the rename: its size, or its size and its sha256 read back. */
  verified: 'size' | 'size+sha256';
  /** Where the previous content was kept (`backup: true`), else null. */
  backup_path: string | null;
}

/** Options of {@link writeAtomicWith}. */
export interface AtomicWriteOptions {
  /** Permission bits of the file (default: those of the existing file, else 0644). */
  mode?: number;
  signal: AbortSignal;
  /** Keep the previous content as `<path>.sshgate-bak-<UTC timestamp>` (a hard link where the server can). */
  backup?: boolean;
  /**
   * Checked once more just before the rename: the sha256 the current file must still have, or null when no
   * file may be there yet. Narrows the window in which another writer's change would be lost.
   */
  expectCurrentSha256?: string | null;
  /** Access and modification times (seconds since the epoch) to give the file (copies keep them). */
  times?: { atime: number; mtime: number };
  /**
   * The leased connection of the SFTP session. When given, and the host is POSIX with path rules and allows
   * exec, the write is placed by a fixed shell script working inside the verified directory (see
   * {@link writeConfined}); otherwise over SFTP alone.
   */
  connection?: PooledConnection;
}

/** What the `fill` function of {@link writeAtomicWith} wrote. */
export interface FillResult {
  bytes: number;
  /** sha256 of what was written, or null when not computed (a server-side copy). */
  sha256: string | null;
}

/** `20260729T101502.123Z`: a UTC timestamp that sorts and is valid in file names everywhere. */
export function backupStamp(date: Date): string {
  return date.toISOString().replaceAll('-', '').replaceAll(':', '');
}

/** sha256 (or another algorithm) of the file at `path`, read until end of file with parallel requests. */
export async function hashRemoteFile(
  sftp: SFTPWrapper,
  path: string,
  algorithm: 'sha256' | 'sha512' | 'md5',
  signal: AbortSignal,
): Promise<{ digest: string; bytes: number }> {
  const handle = await sftpOps.open(sftp, path, 'r');
  try {
    const stats = await sftpOps.fstat(sftp, handle, path);
    if (stats.isDirectory()) throw new SshgateError('INVALID_INPUT', `${path} is a directory`);
    const hash = createHash(algorithm);
    let bytes = 0;
    for await (const chunk of readChunks(sftp, handle, path, 0, stats.size, signal, 256 * 1024, 16)) {
      hash.update(chunk);
      bytes += chunk.length;
    }
    return { digest: hash.digest('hex'), bytes };
  } finally {
    await sftpOps.close(sftp, handle, path).catch(() => undefined);
  }
}

/** Adds what the file system says about free space to a failed write (a full disk answers just "Failure"). */
async function explainWriteFailure(sftp: SFTPWrapper, dir: string, err: unknown): Promise<unknown> {
  if (!(err instanceof SshgateError) || err.code !== 'REMOTE_FAILURE' || !hasExtension(sftp, 'statvfs@openssh.com', '2')) return err;
  const info = await sftpOps.statvfs(sftp, dir).catch(() => null);
  if (info === null) return err;
  // Measured while the partial temp file still holds its blocks: a full file system shows (almost) nothing free.
  const free = info.freeBytes;
  if (free >= 64 * 1024) return err;
  return new SshgateError('REMOTE_FAILURE', `${err.message}: the file system of ${dir} is full (${free} bytes free); the file was not replaced`, {
    cause: err,
    details: { free_bytes: free },
  });
}

async function keepBackup(sftp: SFTPWrapper, host: ResolvedHost, target: WriteTarget & { existing: Stats }, signal: AbortSignal): Promise<string> {
  const personality = personalityOf(host);
  const backup = personality.join(target.dir, `${personality.basename(target.path)}.sshgate-bak-${backupStamp(new Date())}`);
  checkReal(host, backup, backup);
  if (hasExtension(sftp, 'hardlink@openssh.com')) {
    try {
      // The old inode stays reachable under the backup name once the rename replaces the file: no copy needed.
      await sftpOps.hardlink(sftp, target.path, backup);
      return backup;
    } catch {
      // Fall through to a copy (a file system without hard links).
    }
  }
  const from = await sftpOps.open(sftp, target.path, 'r');
  try {
    const to = await sftpOps.open(sftp, backup, 'wx', 0o600);
    try {
      let position = 0;
      for await (const chunk of readChunks(sftp, from, target.path, 0, target.existing.size, signal, 256 * 1024, 16)) {
        await sftpOps.write(sftp, to, chunk, position, backup);
        position += chunk.length;
      }
      const st = await sftpOps.fstat(sftp, to, backup);
      if (st.size !== position) throw new SshgateError('REMOTE_FAILURE', `short write to the backup ${backup} (disk full?); the file was not replaced`);
    } catch (err) {
      await sftpOps.close(sftp, to, backup).catch(() => undefined);
      await sftpOps.unlink(sftp, backup).catch(() => undefined);
      throw err;
    }
    await sftpOps.close(sftp, to, backup);
    await sftpOps.setstat(sftp, backup, { mode: target.existing.mode & 0o7777 });
    return backup;
  } finally {
    await sftpOps.close(sftp, from, target.path).catch(() => undefined);
  }
}

/**
 * Replaces (or creates) `target` atomically with what `fill` writes into an open temp file:
 * 1. a temp file `.<name>.sshgate-<random>.tmp` is created exclusively (mode 0600) in the same directory;
 * 2. `fill` writes it and reports the bytes and, when it knows it, the sha256;
 * 3. the temp file's size is checked with `fstat` (ssh2's write stream can end silently truncated on a full
 *    disk: never trust a `finish`), it is fsynced where the server supports it, and closed;
 * 4. its sha256 is read back and compared when it is at most {@link VERIFY_DIGEST_MAX_BYTES};
 * 5. owner and group of an existing file are copied, then the mode (in this order: chown clears setuid/setgid);
 * 6. `expectCurrentSha256`, when given, is checked against the current file once more;
 * 7. `backup` keeps the old file as `<path>.sshgate-bak-<UTC>`;
 * 8. the directory's real path is checked again (the race SFTP cannot close), then `posix-rename@openssh.com`
 *    replaces the file.
 * On any failure the temp file (and a backup made for this write) is removed and the old file is untouched.
 * @throws SshgateError REMOTE_FAILURE (short write, digest mismatch, disk full, file changed meanwhile),
 *   PATH_DENIED (directory moved, backup path restricted), CANCELLED/COMMAND_TIMEOUT, SFTP errors.
 */
export async function writeAtomicWith(
  sftp: SFTPWrapper,
  host: ResolvedHost,
  target: WriteTarget,
  fill: (handle: Buffer, tmpPath: string) => Promise<FillResult>,
  options: AtomicWriteOptions,
): Promise<WriteOutcome> {
  const personality = personalityOf(host);
  const tmp = personality.join(target.dir, `.${personality.basename(target.path)}.sshgate-${randomToken(6)}.tmp`);
  const mode = options.mode ?? (target.existing === null ? 0o644 : target.existing.mode & 0o7777);
  const handle = await sftpOps.open(sftp, tmp, 'wx', 0o600);
  let open = true;
  let backupPath: string | null = null;
  let renamed = false;
  try {
    let filled: FillResult;
    try {
      filled = await fill(handle, tmp);
    } catch (err) {
      throw await explainWriteFailure(sftp, target.dir, err);
    }
    const written = await sftpOps.fstat(sftp, handle, tmp);
    if (written.size !== filled.bytes) {
      throw new SshgateError(
        'REMOTE_FAILURE',
        `short write to ${target.path}: ${written.size} of ${filled.bytes} bytes reached the disk (disk full?); the file was not replaced`,
      );
    }
    if (hasExtension(sftp, 'fsync@openssh.com')) await sftpOps.fsync(sftp, handle, tmp);
    open = false;
    await sftpOps.close(sftp, handle, tmp);
    let verified: WriteOutcome['verified'] = 'size';
    if (filled.sha256 !== null && filled.bytes <= VERIFY_DIGEST_MAX_BYTES) {
      const back = await hashRemoteFile(sftp, tmp, 'sha256', options.signal);
      if (back.digest !== filled.sha256 || back.bytes !== filled.bytes) {
        throw new SshgateError('REMOTE_FAILURE', `the content that reached ${target.path} differs from what was sent (sha256 ${back.digest}, expected ${filled.sha256}); the file was not replaced`);
      }
      verified = 'size+sha256';
    }
    let ownerPreserved = true;
    if (target.existing !== null && (target.existing.uid !== written.uid || target.existing.gid !== written.gid)) {
      try {
        await sftpOps.setstat(sftp, tmp, { uid: target.existing.uid, gid: target.existing.gid });
      } catch {
        ownerPreserved = false;
      }
    }
    // After the chown: changing the owner clears setuid and setgid bits.
    await sftpOps.setstat(sftp, tmp, { mode });
    if (options.times !== undefined) await sftpOps.utimes(sftp, tmp, options.times.atime, options.times.mtime);
    if (options.expectCurrentSha256 !== undefined) {
      const current = await currentSha256(sftp, target.path, options.signal);
      if (current !== options.expectCurrentSha256) {
        throw new SshgateError(
          'REMOTE_FAILURE',
          `${target.path} changed while it was being written (now ${current === null ? 'absent' : `sha256 ${current}`}); the file was not replaced: read it again`,
          { details: { current_sha256: current } },
        );
      }
    }
    if (options.backup === true && target.existing !== null) backupPath = await keepBackup(sftp, host, { ...target, existing: target.existing }, options.signal);
    // Security: the directory could have been swapped for a symlink since it was checked.
    const dirNow = await sftpOps.realpath(sftp, target.dir);
    if (dirNow !== target.dir) throw new SshgateError('PATH_DENIED', `${target.dir} changed while writing (now resolves to ${dirNow}); the file was not replaced`);
    checkReal(host, target.dir, dirNow);
    if (options.signal.aborted) throw abortReason(options.signal);
    try {
      await sftpOps.posixRename(sftp, tmp, target.path);
    } catch (err) {
      if (target.existing !== null) throw err;
      await sftpOps.rename(sftp, tmp, target.path);
    }
    renamed = true;
    return {
      path: target.path,
      bytes: filled.bytes,
      created: target.existing === null,
      mode,
      owner_preserved: ownerPreserved,
      sha256: filled.sha256,
      verified,
      backup_path: backupPath,
    };
  } catch (err) {
    if (open) await sftpOps.close(sftp, handle, tmp).catch(() => undefined);
    if (!renamed) {
      await sftpOps.unlink(sftp, tmp).catch(() => undefined);
      if (backupPath !== null) await sftpOps.unlink(sftp, backupPath).catch(() => undefined);
    }
    throw err;
  }
}

/** sha256 of the file at `path`, or null when there is none. */
async function currentSha256(sftp: SFTPWrapper, path: string, signal: AbortSignal): Promise<string | null> {
  try {
    return (await hashRemoteFile(sftp, path, 'sha256', signal)).digest;
  } catch (err) {
    if (isNotFound(err)) return null;
    throw err;
  }
}

/**
 * The confined write script. $1 real directory (already checked inside the roots), $2 file name, $3 size,
 * $4 sha256, $5 mode ('' keeps the old one, 644 for a new file), $6 expected sha256 of the current file ('' none,
 * 'none' = must not exist), $7 backup name ('' none). stdin: the content. Prints NUL-separated fields:
 * created (1|0), mode, owner kept (1|0), backup name.
 * Security: after `cd -P` and the `pwd -P` check, every name is relative, so the directory (or anything above
 * it) swapped for a symlink afterwards cannot redirect the write: the shell's working directory is the inode
 * that was checked. This is the openat() that SFTP lacks.
 */
const CONFINED_WRITE_SCRIPT = [
  'cd -P -- "$1" && [ "$(pwd -P)" = "$1" ] || exit 41',
  't=./$2',
  '[ -L "$t" ] && exit 47',
  '[ -d "$t" ] && exit 42',
  'if [ -e "$t" ] && ! [ -f "$t" ]; then exit 42; fi',
  'if [ -n "$6" ]; then',
  `  if [ -f "$t" ]; then c=$(sha256sum < "$t") || exit 43; c=\${c%% *}; else c=none; fi`,
  `  [ "$c" = "$6" ] || { printf '%s\\0' "$c"; exit 46; }`,
  'fi',
  'tmp=$(mktemp -- "./.$2.sshgate-XXXXXXXX") || exit 43',
  `trap 'rm -f -- "$tmp"' EXIT`,
  'cat > "$tmp" || exit 43',
  `s=$(stat -c %s -- "$tmp") && [ "$s" = "$3" ] || { printf '%s\\0' "$s"; exit 44; }`,
  `c=$(sha256sum < "$tmp") && [ "\${c%% *}" = "$4" ] || exit 44`,
  'created=1; m=644; kept=1; b=',
  'if [ -f "$t" ]; then',
  '  created=0; m=$(stat -c %a -- "$t") || exit 45',
  // chown before chmod: chown clears setuid/setgid bits. A non-root account cannot give a file away: the owner is then lost.
  '  o=$(stat -c %u:%g -- "$t") && [ "$(stat -c %u:%g -- "$tmp")" = "$o" ] || chown -- "$o" "$tmp" 2>/dev/null || kept=0',
  '  if [ -n "$7" ]; then b=./$7; ln -- "$t" "$b" 2>/dev/null || cp -p -- "$t" "$b" || exit 45; fi',
  'fi',
  'if [ -n "$5" ]; then m=$5; fi',
  'chmod -- "$m" "$tmp" || exit 45',
  // -T: never move the temp file into a directory that appeared at the path.
  'mv -fT -- "$tmp" "$t" || exit 45',
  'trap - EXIT',
  `printf '%s\\0' "$created" "$m" "$kept" "$b"`,
].join('\n');

/**
 * Writes through {@link CONFINED_WRITE_SCRIPT} on the leased connection. Returns null when the host cannot run it
 * (a refused channel, no bash or coreutils), so the caller falls back to SFTP.
 * @throws SshgateError PATH_DENIED (the directory changed under us), REMOTE_FAILURE (disk full, changed file).
 */
async function writeConfined(conn: PooledConnection, target: WriteTarget, data: Buffer, options: AtomicWriteOptions): Promise<WriteOutcome | null> {
  const sha256 = createHash('sha256').update(data).digest('hex');
  const name = target.path.slice(target.dir.length + (target.dir.endsWith('/') ? 0 : 1));
  const backupName = options.backup === true && target.existing !== null ? `${name}.sshgate-bak-${backupStamp(new Date())}` : '';
  const expected = options.expectCurrentSha256 === undefined ? '' : (options.expectCurrentSha256 ?? 'none');
  const args = [target.dir, name, String(data.length), sha256, options.mode === undefined ? '' : options.mode.toString(8), expected, backupName];
  const command = `exec bash -c ${shellQuote(CONFINED_WRITE_SCRIPT)} sshgate-write ${args.map(shellQuote).join(' ')}`;
  let result: { exit_code: number | null; stdout: string; stderr: string };
  try {
    result = await execOnConnection(conn, command, data, options.signal);
  } catch (err) {
    if (err instanceof ChannelOpenError) return null;
    throw err;
  }
  const fields = result.stdout.split('\0');
  switch (result.exit_code) {
    case 0: {
      const [created, mode, kept, backup] = fields;
      return {
        path: target.path,
        bytes: data.length,
        created: created === '1',
        mode: parseInt(mode ?? '644', 8),
        owner_preserved: kept === '1',
        sha256,
        verified: 'size+sha256',
        backup_path: backup === undefined || backup === '' ? null : `${target.dir}/${backup.slice(2)}`,
      };
    }
    case 41:
    case 47:
      throw new SshgateError('PATH_DENIED', `${target.path}: its directory or the file changed into a symlink while writing; the file was not written`);
    case 42:
      throw new SshgateError('REMOTE_FAILURE', `${target.path} is not a regular file`);
    case 44:
      throw new SshgateError('REMOTE_FAILURE', `short write to ${target.path}: ${fields[0] ?? '?'} of ${data.length} bytes reached the disk (disk full?); the file was not replaced`);
    case 46:
      throw new SshgateError('REMOTE_FAILURE', `${target.path} changed while it was being written (now ${fields[0] === 'none' ? 'absent' : `sha256 ${fields[0] ?? '?'}`}); the file was not replaced: read it again`, {
        details: { current_sha256: fields[0] === 'none' ? null : (fields[0] ?? null) },
      });
    case 126:
    case 127:
      return null;
    default: {
      const why = result.stderr.trim().split('\n').slice(-2).join('; ');
      if (/Permission denied/u.test(why)) throw new SshgateError('REMOTE_PERMISSION_DENIED', `${target.path}: permission denied for the remote account (${why})`);
      if (/No space left/u.test(why)) throw new SshgateError('REMOTE_FAILURE', `${target.path}: the file system is full; the file was not replaced`);
      throw new SshgateError('REMOTE_FAILURE', `${target.path}: the write failed (exit ${result.exit_code ?? 'none'}: ${why || 'no message'}); the file was not replaced`);
    }
  }
}

/**
 * Writes `data` to `target` atomically (see {@link writeAtomicWith}): parallel write requests of 256 KiB, the
 * size checked with `fstat` and, up to {@link VERIFY_DIGEST_MAX_BYTES}, the sha256 read back.
 * @throws SshgateError REMOTE_FAILURE (short write, disk full, digest mismatch), PATH_DENIED (directory moved), SFTP errors.
 */
export async function writeAtomic(
  sftp: SFTPWrapper,
  host: ResolvedHost,
  target: WriteTarget,
  data: Buffer,
  options: Omit<AtomicWriteOptions, 'times'>,
): Promise<WriteOutcome> {
  if (options.connection !== undefined && host.platform === 'posix' && host.allowExecute && hasPathRules(host)) {
    const confined = await writeConfined(options.connection, target, data, options);
    if (confined !== null) return confined;
  }
  const sha256 = createHash('sha256').update(data).digest('hex');
  return writeAtomicWith(
    sftp,
    host,
    target,
    async (handle, tmp) => {
      const chunk = 256 * 1024;
      const writes: Promise<undefined>[] = [];
      try {
        for (let offset = 0; offset < data.length; offset += chunk) {
          if (options.signal.aborted) throw abortReason(options.signal);
          const write = sftpOps.write(sftp, handle, data.subarray(offset, offset + chunk), offset, tmp);
          write.catch(() => undefined);
          writes.push(write);
          if (writes.length >= 8) await writes.shift();
        }
        await Promise.all(writes);
      } catch (err) {
        // Let every request in flight settle before the handle is closed and the temp file removed.
        await Promise.allSettled(writes);
        throw err;
      }
      return { bytes: data.length, sha256 };
    },
    options,
  );
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

/** The kind of file a POSIX mode describes (the S_IFMT bits, POSIX.1 <sys/stat.h>). */
export type FileKind = 'file' | 'directory' | 'symlink' | 'fifo' | 'socket' | 'block' | 'char' | 'other';

/** Maps the S_IFMT bits of `mode` to a {@link FileKind}. */
export function fileKindOfMode(mode: number): FileKind {
  switch (mode & 0o170000) {
    case 0o100000:
      return 'file';
    case 0o040000:
      return 'directory';
    case 0o120000:
      return 'symlink';
    case 0o010000:
      return 'fifo';
    case 0o140000:
      return 'socket';
    case 0o060000:
      return 'block';
    case 0o020000:
      return 'char';
    default:
      return 'other';
  }
}

/** True when `err` is an SFTP "no such file" error. */
export function isNotFound(err: unknown): boolean {
  return (err instanceof SshgateError && err.code === 'REMOTE_NOT_FOUND') || (err as { code?: number } | null)?.code === SFTP_NO_SUCH_FILE;
}
