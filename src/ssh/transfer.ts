// Streamed, verified, resumable file transfers: this machine <-> a host (upload, download) and host -> host.
// Each file goes through parallel requests into a temp file beside the destination, is checked (size, sha256),
// then renamed into place, so no failure leaves a half-written destination; a partial file kept after a dropped
// connection lets the next call with `resume` continue from its verified prefix.
import { createHash, type Hash } from 'node:crypto';
import { constants as fsConstants, type Stats as FsStats } from 'node:fs';
import { chmod, chown, link, lstat, mkdir, open, readdir, realpath, rename, stat, unlink, type FileHandle } from 'node:fs/promises';
import { homedir } from 'node:os';
import { posix } from 'node:path';
import picomatch from 'picomatch';
import type { SFTPWrapper, Stats } from 'ssh2';
import { SshgateError, isSshgateError, type ErrorCode } from '../errors.js';
import type { ResolvedHost } from '../config/load.js';
import { checkLocalPath, isUnder } from '../policy/path-policy.js';
import { shellQuote } from '../policy/shell-quote.js';
import { execCommand, randomToken, streamCommand } from './exec.js';
import type { FacadeDeps } from './facade.js';
import { mapSftpError } from './map-error.js';
import { personalityOf } from './personality.js';
import { abortable, ChannelOpenError, classifyOpenError, signalError, type Lease } from './pool.js';
import { assertAllowed, confineEntry, confineExisting, fileKindOfMode, isAllowed, isNotFound, lexicalPath, sftpOps, VERIFY_DIGEST_MAX_BYTES } from './sftp.js';

/** What a transfer call asks for. */
export interface TransferOptions {
  /** Replace an existing destination file (otherwise ALREADY_EXISTS, before anything is written). */
  overwrite: boolean;
  /**
   * Write into `.<name>.sshgate-partial` beside the destination, keep it when the connection drops, and
   * continue from its verified prefix when it is there at the start.
   */
  resume: boolean;
  /** Copy a directory tree (its contents go to the destination directory, created when missing). */
  recursive: boolean;
  /** picomatch globs, relative to the source directory (a glob without `/` matches the name): files to copy. Empty: all. */
  include: readonly string[];
  /** Globs of files and directories to leave out. */
  exclude: readonly string[];
  /** Read every destination back and compare sha256 with the source's (always done up to 8 MiB). */
  verifySha256: boolean;
}

/** One file copied. */
export interface TransferredFile {
  source: string;
  destination: string;
  /** Size of the file in bytes. */
  bytes: number;
  /** sha256 of the content, computed while streaming from the source. */
  sha256: string;
  /** Bytes taken over from a partial file after verification (0 when none). */
  resumed_from: number;
  /** `size+sha256` when the destination was read back and its digest compared; `size` otherwise. */
  verified: 'size' | 'size+sha256';
  /** True when the source host sent the file as one stream (`cat` over an exec channel), false for SFTP reads. */
  streamed: boolean;
}

/** An entry of a tree left out, and why. */
export interface SkippedEntry {
  path: string;
  reason: string;
}

/** The result of a transfer. */
export interface TransferOutcome {
  /** Real path of the source (file or directory). */
  source: string;
  /** Real path of the destination (file or directory). */
  destination: string;
  files: TransferredFile[];
  skipped: SkippedEntry[];
  /** Bytes of all files copied. */
  bytes: number;
  /** Bytes that crossed the wire in this call (resumed prefixes excluded). */
  bytes_transferred: number;
  duration_ms: number;
  /** bytes_transferred per second, in MiB/s. */
  mib_per_s: number;
}

/** The transfer operations tools may use (see facade.ts). Every method honours the call's signal. */
export interface TransferFacade {
  /**
   * Copies a local file or tree (inside `local_paths`, real path checked) to `remotePath` on `host`.
   * @throws SshgateError PATH_DENIED, ALREADY_EXISTS, LOCAL_FAILURE, REMOTE_*, CONNECTION_LOST, CANCELLED, COMMAND_TIMEOUT.
   */
  upload(host: ResolvedHost, localPath: string, remotePath: string, options: TransferOptions): Promise<TransferOutcome>;
  /** Copies a remote file or tree to a local path inside `local_paths`; throws as {@link TransferFacade.upload}. */
  download(host: ResolvedHost, remotePath: string, localPath: string, options: TransferOptions): Promise<TransferOutcome>;
  /**
   * Copies between two hosts through this process with bounded memory (both hosts already authorized by the
   * caller); throws as {@link TransferFacade.upload}.
   */
  copyBetweenHosts(source: ResolvedHost, sourcePath: string, destination: ResolvedHost, destinationPath: string, options: TransferOptions): Promise<TransferOutcome>;
}

/** Files of a tree copied at once (each with its own requests in flight). */
const FILES_IN_PARALLEL = 4;
/** Bound on the clean-up after a failure or cancellation (close and remove the temp file). */
const CLEANUP_MS = 5000;
/** Progress notifications are sent at most this often. */
const PROGRESS_INTERVAL_MS = 200;
const MIB = 1024 * 1024;

type EntryKind = 'file' | 'directory' | 'symlink' | 'other';

interface EntryInfo {
  kind: EntryKind;
  size: number;
  /** Permission bits and file type, as stat gives them. */
  mode: number;
  mtimeMs: number;
  uid: number;
  gid: number;
}

interface ReadableFile {
  /** Size at open time (0 for pseudo-files, which are read until end of file anyway). */
  readonly size: number;
  readonly mtimeMs: number;
  /** Reads up to `into.length` bytes at `position` into `into`; returns the filled part (empty at end of file). */
  readAt(position: number, into: Buffer): Promise<Buffer>;
  /** stat of the open file, to notice a source that changed while it was read. */
  restat(): Promise<EntryInfo>;
  close(): Promise<void>;
  /**
   * When the side can send the file as one stream (a remote `cat`; see {@link remoteStream}): hands the bytes from
   * `start` to end of file to `sink` in order. Resolves false, having called `sink` never, when the stream could
   * not start (the caller then reads with {@link readAt}).
   */
  stream?: (start: number, sink: (chunk: Buffer) => Promise<void> | undefined, signal: AbortSignal) => Promise<boolean>;
}

interface WritableFile {
  /** Writes consecutive pieces starting at `position` (one system call locally, one request each remotely). */
  writeAt(position: number, pieces: readonly Buffer[]): Promise<void>;
  /** Size on the destination's disk (fstat of the open file). */
  size(): Promise<number>;
  truncate(size: number): Promise<void>;
  close(): Promise<void>;
}

/** One side of a transfer: this machine, or a host through one SFTP session. Paths are real, checked paths. */
interface Endpoint {
  /** `this machine` or `host <alias>`, for messages. */
  readonly label: string;
  /** Error code of a failure on this side that is not an SFTP status. */
  readonly failureCode: ErrorCode;
  /** Largest read or write request the side accepts in one piece. */
  readonly maxRequestBytes: number;
  /** Permission bits a new file may take over from its source (this machine: none for group and others to write). */
  readonly newFileModeMask: number;
  join(dir: string, name: string): string;
  dirname(path: string): string;
  basename(path: string): string;
  /** A source given by the model: policy check, real path, stat (symlinks followed, and checked). */
  resolveSource(path: string): Promise<{ path: string; info: EntryInfo }>;
  /** A destination given by the model: as above when it exists, else the real parent joined with the name. */
  resolveDestination(path: string): Promise<{ path: string; info: EntryInfo | null }>;
  /** Why a path found inside a tree may not be used (restricted paths), or null. */
  denial(path: string): string | null;
  list(dir: string): Promise<{ name: string; info: EntryInfo }[]>;
  lstat(path: string): Promise<EntryInfo | null>;
  realDir(dir: string): Promise<string>;
  mkdir(path: string, mode: number): Promise<void>;
  openRead(path: string): Promise<ReadableFile>;
  /** Creates a new file exclusively (mode 0600; never through a symlink). */
  create(path: string): Promise<WritableFile>;
  /** Opens an existing regular file (a partial file to resume) for writing; refuses a symlink. */
  reopen(path: string): Promise<WritableFile>;
  unlink(path: string): Promise<void>;
  /** Sets owner (when given; returns false if that was refused) and mode of a finished temp file. */
  finish(path: string, mode: number, owner: { uid: number; gid: number } | null): Promise<boolean>;
  /** Moves `from` to `to`; without `replace`, an existing `to` fails with ALREADY_EXISTS (no clobbering race). */
  rename(from: string, to: string, replace: boolean): Promise<void>;
  /**
   * sha256 of the first `length` bytes of `path`. `hash` is the running hash object when the bytes were read
   * here (so it can continue), or null when the side computed the digest itself (a remote `sha256sum`).
   */
  digest(path: string, length: number): Promise<{ sha256: string; hash: Hash | null }>;
  /** False once the side's connection is known dead (no clean-up is attempted there). */
  alive(): boolean;
  /**
   * Runs `issue`, which sends several requests at once, so that they leave in one system call (the socket is
   * corked until the next tick) rather than one per SSH packet.
   */
  batch(issue: () => void): void;
}

/** What a transfer distinguishes of {@link fileKindOfMode}'s kinds: devices, fifos and sockets are all `other`. */
function kindOfMode(mode: number): EntryKind {
  const kind = fileKindOfMode(mode);
  return kind === 'file' || kind === 'directory' || kind === 'symlink' ? kind : 'other';
}

function remoteInfo(attrs: Stats | { mode: number; size: number; mtime: number; uid: number; gid: number }): EntryInfo {
  return { kind: kindOfMode(attrs.mode), size: attrs.size, mode: attrs.mode, mtimeMs: attrs.mtime * 1000, uid: attrs.uid, gid: attrs.gid };
}

function localInfo(st: FsStats): EntryInfo {
  return { kind: kindOfMode(st.mode), size: st.size, mode: st.mode, mtimeMs: Math.floor(st.mtimeMs), uid: st.uid, gid: st.gid };
}

const noop = (): undefined => undefined;

/** Waits for `promise` at most `ms`, ignoring its outcome (clean-up after a failure must not hang or throw). */
async function settleWithin(promise: Promise<unknown>, ms: number): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  await Promise.race([promise.catch(noop), new Promise<void>((resolve) => (timer = setTimeout(resolve, ms)))]);
  clearTimeout(timer);
}

/** A name for a file entry that is safe to join: a server listing `..` or `a/b` must not lead out of a tree. */
function isPlainName(name: string): boolean {
  return name !== '' && name !== '.' && name !== '..' && !/[/\\\p{Cc}]/u.test(name);
}

/** The temp (or partial) file name beside `name`; long names are digested so the result stays under NAME_MAX. */
function tempName(name: string, resumable: boolean): string {
  const base = Buffer.byteLength(name) > 200 ? createHash('sha256').update(name).digest('hex').slice(0, 32) : name;
  return resumable ? `.${base}.sshgate-partial` : `.${base}.sshgate-${randomToken(6)}.tmp`;
}

// ---------------------------------------------------------------------------------------------------------
// This machine.

function localError(err: unknown, op: string, path: string): SshgateError {
  if (isSshgateError(err)) return err;
  const code = (err as NodeJS.ErrnoException | null)?.code ?? '';
  const reason: Record<string, string> = {
    ENOENT: 'no such file or directory',
    ENOTDIR: 'a component of the path is not a directory',
    EACCES: 'permission denied for the sshgate process',
    EPERM: 'operation not permitted for the sshgate process',
    ENOSPC: 'no space left on the local disk',
    EDQUOT: 'the local disk quota is exhausted',
    EISDIR: 'is a directory',
  };
  if (code === 'EEXIST') return new SshgateError('ALREADY_EXISTS', `${path} exists on this machine`, { cause: err });
  if (code === 'ELOOP') return new SshgateError('PATH_DENIED', `${path} is a symlink on this machine; it is not followed`, { cause: err });
  return new SshgateError('LOCAL_FAILURE', `${op} ${path} (this machine): ${reason[code] ?? (err as Error).message}`, { cause: err });
}

async function localCall<T>(op: string, path: string, fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    throw localError(err, op, path);
  }
}

function localReadable(fh: FileHandle, path: string, info: EntryInfo): ReadableFile {
  let closed = false;
  return {
    size: info.size,
    mtimeMs: info.mtimeMs,
    readAt: (position, into) =>
      localCall('read', path, async () => {
        const { bytesRead } = await fh.read(into, 0, into.length, position);
        return into.subarray(0, bytesRead);
      }),
    restat: () => localCall('stat', path, async () => localInfo(await fh.stat())),
    close: async () => {
      if (closed) return;
      closed = true;
      await fh.close();
    },
  };
}

function localWritable(fh: FileHandle, path: string): WritableFile {
  let closed = false;
  return {
    writeAt: (position, pieces) =>
      localCall('write', path, async () => {
        const total = pieces.reduce((n, b) => n + b.length, 0);
        let done = (await fh.writev(pieces, position)).bytesWritten;
        if (done === total) return;
        // A short write (rare on regular files): write the rest piece by piece.
        const data = Buffer.concat(pieces);
        while (done < total) {
          const { bytesWritten } = await fh.write(data, done, total - done, position + done);
          if (bytesWritten === 0) throw new SshgateError('LOCAL_FAILURE', `write ${path} (this machine): no progress (disk full?)`);
          done += bytesWritten;
        }
      }),
    size: () => localCall('stat', path, async () => (await fh.stat()).size),
    truncate: (size) => localCall('truncate', path, () => fh.truncate(size)),
    close: async () => {
      if (closed) return;
      closed = true;
      await localCall('close', path, () => fh.close());
    },
  };
}

/**
 * This machine as a transfer side. Every path given by the model passes the lexical `local_paths` check, then
 * its real path (symlinks resolved) must lie inside the real path of one of the `local_paths` directories.
 * Files are opened with O_NOFOLLOW, temp files with O_EXCL, so a symlink swapped in later is not followed.
 */
function localEndpoint(localPaths: readonly string[], signal: AbortSignal): Endpoint {
  const home = homedir();
  let allowedReal: Promise<string[]> | null = null;
  const roots = (): Promise<string[]> => {
    allowedReal ??= Promise.all(localPaths.map((p) => realpath(p).catch(() => p)));
    return allowedReal;
  };
  const check = (path: string): string => {
    const decision = checkLocalPath(path, localPaths, home);
    if (!decision.allowed) throw new SshgateError('PATH_DENIED', decision.message, { details: { rule: decision.rule } });
    return decision.path;
  };
  // Security: the real path decides, so a symlink inside an allowed directory cannot lead out of it.
  const inside = async (real: string, requested: string): Promise<void> => {
    const allowed = await roots();
    if (allowed.some((root) => isUnder(real, root))) return;
    throw new SshgateError(
      'PATH_DENIED',
      `local_path ${requested} resolves to ${real}, outside the allowed local directories [${allowed.join(', ')}] (config key local_paths); symlinks may not lead out of them`,
      { details: { rule: 'local_paths' } },
    );
  };
  const lstatOrNull = async (path: string): Promise<FsStats | null> => {
    try {
      return await lstat(path);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
      throw localError(err, 'lstat', path);
    }
  };
  const openFile = (path: string, flags: number, mode?: number): Promise<FileHandle> => localCall('open', path, () => open(path, flags, mode));

  return {
    label: 'this machine',
    failureCode: 'LOCAL_FAILURE',
    maxRequestBytes: Number.POSITIVE_INFINITY,
    newFileModeMask: 0o755,
    join: (dir, name) => posix.join(dir, name),
    dirname: (path) => posix.dirname(path),
    basename: (path) => posix.basename(path),

    async resolveSource(path) {
      const lexical = check(path);
      const real = await localCall('realpath', lexical, () => realpath(lexical));
      await inside(real, lexical);
      return { path: real, info: localInfo(await localCall('stat', real, () => stat(real))) };
    },

    async resolveDestination(path) {
      const lexical = check(path);
      if ((await lstatOrNull(lexical)) !== null) {
        const real = await localCall('realpath', lexical, () => realpath(lexical));
        await inside(real, lexical);
        return { path: real, info: localInfo(await localCall('stat', real, () => stat(real))) };
      }
      const parent = await localCall('realpath', posix.dirname(lexical), () => realpath(posix.dirname(lexical)));
      const target = posix.join(parent, posix.basename(lexical));
      await inside(target, lexical);
      return { path: target, info: null };
    },

    denial: () => null,

    async list(dir) {
      const names = await localCall('readdir', dir, () => readdir(dir));
      const out: { name: string; info: EntryInfo }[] = [];
      for (let i = 0; i < names.length; i += 64) {
        const batch = await Promise.all(
          names.slice(i, i + 64).map(async (name) => {
            const st = await lstatOrNull(posix.join(dir, name));
            return st === null ? null : { name, info: localInfo(st) };
          }),
        );
        for (const item of batch) if (item !== null) out.push(item);
      }
      return out;
    },

    async lstat(path) {
      const st = await lstatOrNull(path);
      return st === null ? null : localInfo(st);
    },

    realDir: (dir) => localCall('realpath', dir, () => realpath(dir)),

    async mkdir(path, mode) {
      try {
        await mkdir(path, { mode });
        await chmod(path, mode);
      } catch (err) {
        const st = await lstatOrNull(path);
        if (st === null || !st.isDirectory()) throw localError(err, 'mkdir', path);
      }
    },

    async openRead(path) {
      const fh = await openFile(path, fsConstants.O_RDONLY | fsConstants.O_NOFOLLOW);
      const info = localInfo(await fh.stat());
      if (info.kind !== 'file') {
        await fh.close();
        throw new SshgateError('LOCAL_FAILURE', `${path} (this machine) is not a regular file`);
      }
      return localReadable(fh, path, info);
    },

    async create(path) {
      const flags = fsConstants.O_WRONLY | fsConstants.O_CREAT | fsConstants.O_EXCL | fsConstants.O_NOFOLLOW;
      return localWritable(await openFile(path, flags, 0o600), path);
    },

    async reopen(path) {
      const fh = await openFile(path, fsConstants.O_RDWR | fsConstants.O_NOFOLLOW);
      if (!(await fh.stat()).isFile()) {
        await fh.close();
        throw new SshgateError('LOCAL_FAILURE', `${path} (this machine) is not a regular file; remove it or call without resume`);
      }
      return localWritable(fh, path);
    },

    unlink: (path) => localCall('unlink', path, () => unlink(path)),

    async finish(path, mode, owner) {
      let ownerPreserved = true;
      if (owner !== null) {
        const st = await localCall('lstat', path, () => lstat(path));
        if (st.uid !== owner.uid || st.gid !== owner.gid) ownerPreserved = await chown(path, owner.uid, owner.gid).then(() => true, () => false);
      }
      await localCall('chmod', path, () => chmod(path, mode));
      return ownerPreserved;
    },

    async rename(from, to, replace) {
      if (replace) {
        await localCall('rename', to, () => rename(from, to));
        return;
      }
      // link() fails when `to` exists, so a file created meanwhile is never replaced.
      await localCall('link', to, () => link(from, to));
      await localCall('unlink', from, () => unlink(from));
    },

    async digest(path, length) {
      const fh = await openFile(path, fsConstants.O_RDONLY | fsConstants.O_NOFOLLOW);
      try {
        const reader = localReadable(fh, path, { kind: 'file', size: length, mode: 0, mtimeMs: 0, uid: 0, gid: 0 });
        const hash = createHash('sha256');
        const chunks = new ChunkPool(MIB, 8);
        for await (const { data, backing } of orderedReads(reader, { start: 0, limit: length, chunk: MIB, concurrency: 4, signal, chunks, batch: runNow })) {
          hash.update(data);
          chunks.give(backing);
        }
        return { sha256: hash.copy().digest('hex'), hash };
      } finally {
        await fh.close().catch(noop);
      }
    },

    alive: () => true,
    batch: runNow,
  };
}

// ---------------------------------------------------------------------------------------------------------
// A host, through the pooled connection's SFTP session.

/** Reads up to `into.length` bytes at `position` into `into`; an empty buffer at end of file. */
function sftpRead(sftp: SFTPWrapper, handle: Buffer, position: number, into: Buffer, path: string): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    try {
      sftp.read(handle, into, 0, into.length, position, (err: (Error & { code?: number }) | undefined, bytesRead: number) => {
        if (err === undefined) resolve(into.subarray(0, bytesRead));
        else if (err.code === 1) resolve(Buffer.alloc(0));
        else reject(mapSftpError(err, 'read', path));
      });
    } catch (err) {
      reject(mapSftpError(err, 'read', path));
    }
  });
}

function sftpTruncate(sftp: SFTPWrapper, handle: Buffer, size: number, path: string): Promise<void> {
  return new Promise((resolve, reject) => {
    try {
      sftp.fsetstat(handle, { size }, (err) => {
        if (err === undefined || err === null) resolve();
        else reject(mapSftpError(err, 'truncate', path));
      });
    } catch (err) {
      reject(mapSftpError(err, 'truncate', path));
    }
  });
}

/**
 * The request size limit ssh2 learned from the server (`limits@openssh.com`; 255 KiB for OpenSSH). ssh2 keeps
 * it in fields it does not type, and splits a larger request into pieces it sends one after the other, which
 * would serialise a pipelined transfer: requests are sized to fit.
 */
function sftpRequestLimit(sftp: SFTPWrapper): number {
  const fields = sftp as unknown as { _maxReadLen?: unknown; _maxWriteLen?: unknown };
  const read = typeof fields._maxReadLen === 'number' && fields._maxReadLen > 0 ? fields._maxReadLen : 32 * 1024;
  const write = typeof fields._maxWriteLen === 'number' && fields._maxWriteLen > 0 ? fields._maxWriteLen : 32 * 1024;
  return Math.min(read, write);
}

function remoteWritable(sftp: SFTPWrapper, handle: Buffer, path: string): WritableFile {
  let closed = false;
  return {
    writeAt: async (position, pieces) => {
      let at = position;
      const writes = pieces.map((piece) => {
        const write = sftpOps.write(sftp, handle, piece, at, path);
        write.catch(noop);
        at += piece.length;
        return write;
      });
      for (const write of writes) await write;
    },
    size: async () => (await sftpOps.fstat(sftp, handle, path)).size,
    truncate: (size) => sftpTruncate(sftp, handle, size, path),
    close: async () => {
      if (closed) return;
      closed = true;
      await sftpOps.close(sftp, handle, path);
    },
  };
}

/** Files from this size on are read from a host as one stream when it may run commands (below, SFTP reads). */
const STREAM_MIN_BYTES = 4 * MIB;
/** How far the stream may run ahead of the destination's writes before the channel is paused. */
const STREAM_AHEAD_BYTES = 8 * MIB;

/**
 * Reads `path` on `host` from `start` to its end as one stream: `cat` (or `tail -c +N`) over an exec channel,
 * after a random marker line. Measured on 256 MiB (2 cores, loopback, native crypto): 356-405 MiB/s against
 * 241-317 MiB/s for OpenSSH `sftp` in the same runs, because nothing is framed per request and no request waits
 * for an answer. The path is the real path that passed the path policy and that the SFTP handle was opened on; it
 * is read again by name, which widens SFTP's own open-by-name race (docs/security-model.md) by one exec round
 * trip. This runs only where the model may run commands itself (`allow_execute`, no `commands.allow` list), so
 * it can read nothing that a command could not. Output before the marker (a shell start-up file that prints) is
 * dropped. The caller checks the byte count and the source's size and mtime afterwards.
 * @returns false when nothing was streamed (the channel or command could not start, or the marker never came):
 *   the caller falls back to SFTP reads.
 * @throws SshgateError REMOTE_FAILURE when the command failed after data arrived; CONNECTION_LOST; the signal's error.
 */
async function remoteStream(
  deps: FacadeDeps,
  host: ResolvedHost,
  path: string,
  start: number,
  sink: (chunk: Buffer) => Promise<void> | undefined,
  signal: AbortSignal,
): Promise<boolean> {
  const marker = Buffer.from(`sshgate-stream-${randomToken(12)}\n`);
  const read = start === 0 ? `cat -- ${shellQuote(path)}` : `tail -c +${start + 1} -- ${shellQuote(path)}`;
  // Set to null by the sink once the marker was seen (TypeScript cannot see that through the callback).
  let head = Buffer.alloc(0) as Buffer | null;
  let sent = 0;
  const result = await streamCommand(
    deps.pool,
    host,
    `printf '%s' ${shellQuote(marker.toString())} && exec ${read}`,
    (chunk) => {
      if (head !== null) {
        // Before the marker: collect (bounded) until it is seen, then pass on what follows it.
        head = Buffer.concat([head, chunk]);
        const at = head.indexOf(marker);
        if (at < 0) {
          if (head.length > 64 * 1024) return Promise.reject(new ChannelOpenError('dead', 'no stream marker in the first 64 KiB of output'));
          return undefined;
        }
        const rest = head.subarray(at + marker.length);
        head = null;
        if (rest.length === 0) return undefined;
        sent += rest.length;
        return sink(rest);
      }
      sent += chunk.length;
      return sink(chunk);
    },
    signal,
  ).catch((err: unknown) => {
    // Nothing reached the sink: reading over SFTP instead is safe (a refused channel, no shell, no marker).
    if (sent === 0 && !signal.aborted && (err instanceof ChannelOpenError || isSshgateError(err, 'REMOTE_FAILURE'))) return null;
    throw err;
  });
  if (result === null) return false;
  if (result.exit_code !== 0) {
    // Nothing reached the sink: SFTP reads may still work (or fail with a precise status).
    if (sent === 0) return false;
    throw new SshgateError('REMOTE_FAILURE', `${host.alias}: reading ${path} failed after ${start + sent} bytes (exit ${String(result.exit_code)}: ${result.stderr.trim().slice(0, 300)})`);
  }
  if (head !== null) return false;
  return true;
}

/**
 * `host` as a transfer side. Paths pass the host's path policy (lexical, then the remote real path); entries
 * of a tree are checked against the rules one by one (restricted paths are skipped). Digests of large files
 * are computed on the host with `head -c N | sha256sum`, so verifying a partial file does not move it over the
 * wire, when the operator lets commands run there at all (`allow_execute`, and no `commands.allow` list that
 * this fixed command would bypass); otherwise over SFTP.
 */
function remoteEndpoint(host: ResolvedHost, sftp: SFTPWrapper, lease: Lease, deps: FacadeDeps): Endpoint {
  const personality = personalityOf(host);
  // sshgate's own fixed commands (digests, streamed reads) run only where the operator lets commands run at all, and
  // no `commands.allow` list exists that they would bypass.
  const mayRun = host.allowExecute && host.platform === 'posix' && (host.commands?.allow ?? []).length === 0;
  const failure = (message: string): SshgateError => new SshgateError('REMOTE_FAILURE', `${host.alias}: ${message}`);
  const socket = corkable(lease);
  const batch = (issue: () => void): void => {
    if (socket === null) {
      issue();
      return;
    }
    socket.cork();
    try {
      issue();
    } finally {
      process.nextTick(() => {
        socket.uncork();
      });
    }
  };
  const lstatOrNull = async (path: string): Promise<Stats | null> => {
    try {
      return await sftpOps.lstat(sftp, path);
    } catch (err) {
      if (isNotFound(err)) return null;
      throw err;
    }
  };
  const sftpDigest = async (path: string, length: number): Promise<{ sha256: string; hash: Hash }> => {
    const handle = await sftpOps.open(sftp, path, 'r');
    try {
      const reader: ReadableFile = {
        size: length,
        mtimeMs: 0,
        readAt: (position, into) => sftpRead(sftp, handle, position, into, path),
        restat: () => Promise.reject(new Error('unused')),
        close: () => Promise.resolve(),
      };
      const hash = createHash('sha256');
      const chunk = sftpRequestLimit(sftp);
      const chunks = new ChunkPool(chunk, deps.transfers.concurrency * 2);
      for await (const { data, backing } of orderedReads(reader, { start: 0, limit: length, chunk, concurrency: deps.transfers.concurrency, signal: deps.signal, chunks, batch })) {
        hash.update(data);
        chunks.give(backing);
      }
      return { sha256: hash.copy().digest('hex'), hash };
    } finally {
      await sftpOps.close(sftp, handle, path).catch(noop);
    }
  };
  const execDigest = async (path: string, length: number): Promise<string | null> => {
    const command = `set -o pipefail; head -c ${length} -- ${shellQuote(path)} | sha256sum`;
    const result = await execCommand(deps.pool, host, command, { maxOutputBytes: 4096, signal: deps.signal }).catch((err: unknown) => {
      if (deps.signal.aborted) throw err;
      return null;
    });
    const match = result === null || result.exit_code !== 0 ? null : /^([0-9a-f]{64})\s/u.exec(result.stdout);
    return match?.[1] ?? null;
  };

  return {
    label: `host ${host.alias}`,
    failureCode: 'REMOTE_FAILURE',
    maxRequestBytes: sftpRequestLimit(sftp),
    newFileModeMask: 0o777,
    join: (dir, name) => personality.join(dir, name),
    dirname: (path) => personality.dirname(path),
    basename: (path) => personality.basename(path),

    async resolveSource(path) {
      const real = await confineExisting(sftp, host, path);
      return { path: real, info: remoteInfo(await sftpOps.stat(sftp, real)) };
    },

    async resolveDestination(path) {
      const lexical = lexicalPath(host, path);
      if ((await lstatOrNull(lexical)) !== null) {
        // Exists: its real path (a symlink followed) must pass the rules too.
        const real = await sftpOps.realpath(sftp, lexical);
        assertAllowed(host, real);
        return { path: real, info: remoteInfo(await sftpOps.stat(sftp, real)) };
      }
      const entry = await confineEntry(sftp, host, lexical);
      if (entry.stats !== null) throw failure(`${entry.path} is a dangling symlink; it is not followed`);
      return { path: entry.path, info: null };
    },

    denial: (path) => (isAllowed(host, path) ? null : `excluded by the path rules of host ${host.alias} (roots, restricted_paths)`),

    async list(dir) {
      const entries = await sftpOps.readdir(sftp, dir);
      return entries.filter((e) => isPlainName(e.filename)).map((e) => ({ name: e.filename, info: remoteInfo(e.attrs) }));
    },

    async lstat(path) {
      const st = await lstatOrNull(path);
      return st === null ? null : remoteInfo(st);
    },

    realDir: (dir) => sftpOps.realpath(sftp, dir),

    async mkdir(path, mode) {
      try {
        await sftpOps.mkdir(sftp, path, mode);
        await sftpOps.setstat(sftp, path, { mode });
      } catch (err) {
        const st = await lstatOrNull(path).catch(() => null);
        if (st === null || !st.isDirectory()) throw err;
      }
    },

    async openRead(path) {
      const handle = await sftpOps.open(sftp, path, 'r');
      const info = remoteInfo(await sftpOps.fstat(sftp, handle, path).catch(async (err: unknown) => {
        await sftpOps.close(sftp, handle, path).catch(noop);
        throw err;
      }));
      let closed = false;
      if (info.kind !== 'file') {
        await sftpOps.close(sftp, handle, path).catch(noop);
        throw failure(`${path} is not a regular file`);
      }
      return {
        size: info.size,
        mtimeMs: info.mtimeMs,
        readAt: (position, into) => sftpRead(sftp, handle, position, into, path),
        restat: async () => remoteInfo(await sftpOps.fstat(sftp, handle, path)),
        close: async () => {
          if (closed) return;
          closed = true;
          await sftpOps.close(sftp, handle, path);
        },
        ...(mayRun && info.size >= STREAM_MIN_BYTES ? { stream: (start: number, sink: (chunk: Buffer) => Promise<void> | undefined, signal: AbortSignal) => remoteStream(deps, host, path, start, sink, signal) } : {}),
      };
    },

    async create(path) {
      // 'wx' is O_CREAT|O_EXCL: a symlink (or anything) at the path is refused, never followed.
      return remoteWritable(sftp, await sftpOps.open(sftp, path, 'wx', 0o600), path);
    },

    async reopen(path) {
      const handle = await sftpOps.open(sftp, path, 'r+');
      const writable = remoteWritable(sftp, handle, path);
      // Security: SFTP cannot open without following a symlink; one swapped in since the lstat is caught here.
      const now = await lstatOrNull(path);
      if (now === null || !now.isFile()) {
        await writable.close().catch(noop);
        throw failure(`${path} changed while it was opened (not a regular file now); call again`);
      }
      return writable;
    },

    unlink: (path) => sftpOps.unlink(sftp, path),

    async finish(path, mode, owner) {
      let ownerPreserved = true;
      if (owner !== null) {
        const st = await sftpOps.lstat(sftp, path);
        if (st.uid !== owner.uid || st.gid !== owner.gid) {
          ownerPreserved = await sftpOps.setstat(sftp, path, { uid: owner.uid, gid: owner.gid }).then(() => true, () => false);
        }
      }
      // After the chown: changing the owner clears setuid and setgid bits.
      await sftpOps.setstat(sftp, path, { mode });
      return ownerPreserved;
    },

    async rename(from, to, replace) {
      if (replace) {
        try {
          await sftpOps.posixRename(sftp, from, to);
          return;
        } catch (err) {
          // A server without posix-rename: plain SFTP rename works when nothing is in the way.
          if ((await lstatOrNull(to)) !== null) throw err;
        }
      }
      try {
        // SFTP v3 rename refuses an existing target (OpenSSH links, then unlinks): no clobbering race.
        await sftpOps.rename(sftp, from, to);
      } catch (err) {
        if (!replace && (await lstatOrNull(to).catch(() => null)) !== null) {
          throw new SshgateError('ALREADY_EXISTS', `${host.alias}: ${to} appeared while the file was copied; it was not replaced (pass overwrite: true to replace it)`);
        }
        throw err;
      }
    },

    async digest(path, length) {
      if (length > VERIFY_DIGEST_MAX_BYTES && mayRun) {
        const sha256 = await execDigest(path, length);
        if (sha256 !== null) return { sha256, hash: null };
      }
      return sftpDigest(path, length);
    },

    alive: () => lease.conn.alive,
    batch,
  };
}

// ---------------------------------------------------------------------------------------------------------
// Streaming.

/**
 * Recycles the request buffers of one file: each read lands in a buffer taken here and goes back once its
 * data was written, so a transfer allocates `concurrency` buffers rather than one per request (less GC).
 */
class ChunkPool {
  private readonly free: Buffer[] = [];

  constructor(
    readonly size: number,
    private readonly keep: number,
  ) {}

  take(): Buffer {
    return this.free.pop() ?? Buffer.allocUnsafe(this.size);
  }

  give(buffer: Buffer): void {
    if (buffer.length === this.size && this.free.length < this.keep) this.free.push(buffer);
  }
}

const runNow = (issue: () => void): void => {
  issue();
};

interface ReadPlan {
  start: number;
  /** Stop at this position (Infinity: at end of file). */
  limit: number;
  chunk: number;
  concurrency: number;
  signal: AbortSignal;
  chunks: ChunkPool;
  batch: (issue: () => void) => void;
}

/**
 * Yields the bytes of `file` in order from `start`, keeping up to `concurrency` requests of `chunk` bytes in
 * flight while the size known at open time is ahead; past it (and after a short read) one request at a time,
 * until end of file or `limit`, so a file that grew or a zero-size pseudo-file is still read completely.
 * Each item carries the pooled buffer holding it (`backing`), for the consumer to give back when done.
 */
async function* orderedReads(file: ReadableFile, plan: ReadPlan): AsyncGenerator<{ data: Buffer; backing: Buffer }> {
  const inflight: { length: number; backing: Buffer; data: Promise<Buffer> }[] = [];
  let next = plan.start;
  let position = plan.start;
  let parallel = file.size > plan.start;
  const issue = (): void => {
    const max = parallel ? plan.concurrency : 1;
    while (inflight.length < max && next < plan.limit && (inflight.length === 0 || next < file.size)) {
      const length = Math.min(plan.chunk, plan.limit - next);
      const backing = plan.chunks.take();
      const data = file.readAt(next, length === backing.length ? backing : backing.subarray(0, length));
      // Requests still in flight when the consumer stops are settled by the server; nothing may go unhandled.
      data.catch(noop);
      inflight.push({ length, backing, data });
      next += length;
    }
  };
  const fill = (): void => {
    const max = parallel ? plan.concurrency : 1;
    // Requests go out a quarter of the window at a time, so that they share system calls and TCP segments.
    if (inflight.length > 0 && max - inflight.length < Math.max(1, Math.floor(max / 4))) return;
    plan.batch(issue);
  };
  fill();
  for (let head = inflight.shift(); head !== undefined; head = inflight.shift()) {
    const data = await abortable(head.data, plan.signal);
    if (data.length === 0) return;
    yield { data, backing: head.backing };
    position += data.length;
    if (data.length < head.length) {
      // A short read: the file ended or shrank. Continue one request at a time from where the data stopped
      // (the buffers of requests dropped here may still be filled by the server: they are not reused).
      inflight.length = 0;
      next = position;
      parallel = false;
    }
    fill();
  }
}

interface CopyContext {
  src: Endpoint;
  dst: Endpoint;
  options: TransferOptions;
  chunk: number;
  concurrency: number;
  signal: AbortSignal;
  /** Counts bytes that reached the destination: `sent` over the wire in this call, or kept from a partial file. */
  onBytes(bytes: number, sent: boolean): void;
}

/** Requests grouped into one write call (one local system call, one corked socket write). */
const WRITE_GROUP = 4;

/**
 * Copies from `start` to end of file, hashing on the way (the hash runs on this thread: a worker thread measured
 * no faster on two cores): as one stream when the source offers one, else with reads and writes in flight.
 * Returns the end position, and whether the stream was used.
 */
async function pump(c: CopyContext, reader: ReadableFile, writer: WritableFile, start: number, hash: Hash | null): Promise<{ end: number; streamed: boolean }> {
  if (reader.stream !== undefined) {
    const end = await pumpStream(c, reader.stream, writer, start, hash);
    if (end !== null) return { end, streamed: true };
  }
  return { end: await pumpReads(c, reader, writer, start, hash), streamed: false };
}

/**
 * The writes of one file in flight to the destination, oldest first. Each is sent inside `dst.batch` (one system
 * call for several requests) and counted through `onBytes` once acknowledged.
 */
class WriteQueue {
  private readonly writes: { done: Promise<void>; length: number; count: number; backings: Buffer[] }[] = [];
  /** Bytes and pieces written but not acknowledged yet. */
  bytes = 0;
  pieces = 0;

  constructor(
    private readonly c: CopyContext,
    private readonly writer: WritableFile,
  ) {}

  /** Writes `pieces` at `at`; `backings` are the pooled buffers to hand back when it is acknowledged. */
  push(at: number, pieces: Buffer[], backings: Buffer[]): void {
    let done: Promise<void> = Promise.resolve();
    this.c.dst.batch(() => {
      done = this.writer.writeAt(at, pieces);
    });
    done.catch(noop);
    const length = pieces.reduce((n, b) => n + b.length, 0);
    this.writes.push({ done, length, count: pieces.length, backings });
    this.bytes += length;
    this.pieces += pieces.length;
  }

  /** Waits for the oldest write; returns its backings. */
  async settleOldest(): Promise<Buffer[]> {
    const oldest = this.writes.shift();
    if (oldest === undefined) return [];
    await abortable(oldest.done, this.c.signal);
    this.bytes -= oldest.length;
    this.pieces -= oldest.count;
    this.c.onBytes(oldest.length, true);
    return oldest.backings;
  }

  /**
   * Runs `body` (which queues the writes), then waits for every write. On a failure the writes in flight are let
   * settle (bounded) before the error goes on, so the caller can close and remove the file.
   */
  async complete<T>(body: () => Promise<T>): Promise<T> {
    try {
      const result = await body();
      while (this.writes.length > 0) await this.settleOldest();
      return result;
    } catch (err) {
      await settleWithin(Promise.allSettled(this.writes.map((w) => w.done)), CLEANUP_MS);
      throw err;
    }
  }
}

/**
 * {@link pump} from a source that sends the file as one stream: chunks are hashed and written in groups of about
 * `chunk * WRITE_GROUP` bytes (coalesced into `chunk`-sized requests for a host, passed as they are to one
 * `writev` here), and the stream is held back while more than {@link STREAM_AHEAD_BYTES} are unacknowledged.
 * @returns the end position, or null when the stream could not start (nothing was written or hashed).
 */
async function pumpStream(
  c: CopyContext,
  stream: NonNullable<ReadableFile['stream']>,
  writer: WritableFile,
  start: number,
  hash: Hash | null,
): Promise<number | null> {
  const coalesce = Number.isFinite(c.dst.maxRequestBytes);
  const groupBytes = c.chunk * WRITE_GROUP;
  const queue = new WriteQueue(c, writer);
  let pending: Buffer[] = [];
  let pendingBytes = 0;
  let position = start;
  const flush = (): void => {
    if (pendingBytes === 0) return;
    let pieces = pending;
    if (coalesce) {
      const all = Buffer.concat(pending, pendingBytes);
      pieces = [];
      for (let at = 0; at < all.length; at += c.chunk) pieces.push(all.subarray(at, Math.min(all.length, at + c.chunk)));
    }
    queue.push(position - pendingBytes, pieces, []);
    pending = [];
    pendingBytes = 0;
  };
  const drain = async (): Promise<void> => {
    while (queue.bytes > STREAM_AHEAD_BYTES / 2) await queue.settleOldest();
  };
  return queue.complete(async () => {
    const streamed = await stream(
      start,
      (chunk) => {
        hash?.update(chunk);
        pending.push(chunk);
        pendingBytes += chunk.length;
        position += chunk.length;
        if (pendingBytes >= groupBytes) flush();
        return queue.bytes > STREAM_AHEAD_BYTES ? drain() : undefined;
      },
      c.signal,
    );
    if (!streamed) return null;
    flush();
    return position;
  });
}

/** {@link pump} with pipelined random-access reads (SFTP, or a local file); a buffer is reused once its write is acknowledged. */
async function pumpReads(c: CopyContext, reader: ReadableFile, writer: WritableFile, start: number, hash: Hash | null): Promise<number> {
  const chunks = new ChunkPool(c.chunk, c.concurrency * 2);
  const queue = new WriteQueue(c, writer);
  let group: { data: Buffer; backing: Buffer }[] = [];
  let groupStart = start;
  let position = start;
  const flush = (): void => {
    if (group.length === 0) return;
    queue.push(
      groupStart,
      group.map((g) => g.data),
      group.map((g) => g.backing),
    );
    group = [];
  };
  return queue.complete(async () => {
    const reads = orderedReads(reader, { start, limit: Number.POSITIVE_INFINITY, chunk: c.chunk, concurrency: c.concurrency, signal: c.signal, chunks, batch: (issue) => {
      c.src.batch(issue);
    } });
    for await (const { data, backing } of reads) {
      hash?.update(data);
      if (group.length === 0) groupStart = position;
      group.push({ data, backing });
      position += data.length;
      if (group.length >= WRITE_GROUP) flush();
      while (queue.pieces >= c.concurrency) for (const b of await queue.settleOldest()) chunks.give(b);
    }
    flush();
    return position;
  });
}

/**
 * Finds how much of a partial file can be kept: the largest candidate prefix (whole requests only, so a torn
 * last write is dropped; then one window of requests less) whose sha256 is the same on both sides.
 */
async function verifiedPrefix(c: CopyContext, source: string, sourceSize: number, partial: string, partialSize: number): Promise<{ length: number; hash: Hash | null }> {
  const usable = Math.min(partialSize, sourceSize);
  const first = usable - (usable % c.chunk);
  const candidates = [...new Set([first, first - c.chunk * c.concurrency])].filter((n) => n > 0);
  for (const length of candidates) {
    const [mine, theirs] = await Promise.all([c.src.digest(source, length), c.dst.digest(partial, length)]);
    if (mine.sha256 === theirs.sha256) return { length, hash: mine.hash };
  }
  return { length: 0, hash: null };
}

interface CopyJob {
  source: string;
  /** Real path of the destination file. */
  destination: string;
  size: number;
  mode: number;
  /** The destination file being replaced (overwrite), or null. */
  existing: EntryInfo | null;
}

function withResumeHint(err: unknown, partial: string, kept: number): unknown {
  if (!isSshgateError(err)) return err;
  return new SshgateError(err.code, `${err.message}; ${kept} bytes were kept in ${partial}`, {
    cause: err,
    hint: 'Call again with the same arguments and resume: true to continue from the verified part.',
    details: { ...err.details, partial_path: partial, partial_bytes: kept },
  });
}

/**
 * Copies one file: temp (or partial) file beside the destination, streamed with the source hashed on the way,
 * size checked on the destination, sha256 read back when small or asked for, mode and owner set, the
 * directory's real path checked again, then renamed into place. On failure the temp file is removed, except
 * that a resumable partial file is kept when the connection dropped (not on cancellation or timeout).
 */
async function copyFile(c: CopyContext, job: CopyJob): Promise<TransferredFile> {
  const dir = c.dst.dirname(job.destination);
  const tmp = c.dst.join(dir, tempName(c.dst.basename(job.destination), c.options.resume));
  if (!c.options.resume) return await copyFileTo(c, job, dir, tmp);
  // The partial file's name is fixed (so a later call can resume it): two resumable copies to one destination
  // would write into the same file. This instance refuses the second while the first runs.
  const key = `${c.dst.label}\0${tmp}`;
  if (resumableInProgress.has(key)) {
    throw new SshgateError('RATE_LIMITED', `another resumable transfer to ${job.destination} (${c.dst.label}) is running; it writes the same partial file ${tmp}`, {
      hint: 'Wait for it to finish, or call without resume.',
      details: { rule: 'transfers.resume', partial_path: tmp },
    });
  }
  resumableInProgress.add(key);
  try {
    return await copyFileTo(c, job, dir, tmp);
  } finally {
    resumableInProgress.delete(key);
  }
}

/** Partial files (`<endpoint label>\0<path>`) that a resumable copy of this process is writing. */
const resumableInProgress = new Set<string>();

async function copyFileTo(c: CopyContext, job: CopyJob, dir: string, tmp: string): Promise<TransferredFile> {
  const reader = await c.src.openRead(job.source);
  let writer: WritableFile | null = null;
  let written = 0;
  try {
    let start = 0;
    let hash: Hash | null = null;
    if (c.options.resume) {
      const partial = await c.dst.lstat(tmp);
      if (partial !== null && partial.kind !== 'file') {
        throw new SshgateError(c.dst.failureCode, `${tmp} (${c.dst.label}) exists and is not a regular file (${partial.kind}); remove it or call without resume`);
      }
      if (partial === null) {
        writer = await c.dst.create(tmp);
      } else {
        writer = await c.dst.reopen(tmp);
        const kept = partial.size > 0 ? await verifiedPrefix(c, job.source, reader.size, tmp, partial.size) : { length: 0, hash: null };
        start = kept.length;
        // The source's hash state after the prefix continues here; a digest the host computed has none.
        if (start > 0) hash = kept.hash;
        if (partial.size !== start) await writer.truncate(start);
      }
    } else {
      writer = await c.dst.create(tmp);
    }
    if (start === 0) hash = createHash('sha256');
    written = start;
    c.onBytes(start, false);
    const { end, streamed } = await pump(
      {
        ...c,
        onBytes: (n, sent) => {
          written += n;
          c.onBytes(n, sent);
        },
      },
      reader,
      writer,
      start,
      hash,
    );

    const after = await reader.restat();
    if (reader.size > 0 && (after.size !== end || after.mtimeMs !== reader.mtimeMs)) {
      throw new SshgateError(c.src.failureCode, `${job.source} (${c.src.label}) changed while it was copied (${reader.size} bytes at the start, ${after.size} now); nothing was replaced: copy it again`);
    }
    // Never trust a stream's end: the destination's own idea of the size must match (a full disk truncates).
    const onDisk = await writer.size();
    if (onDisk !== end) {
      throw new SshgateError(c.dst.failureCode, `short write to ${job.destination} (${c.dst.label}): ${onDisk} of ${end} bytes reached the disk (disk full?); the destination was not touched`);
    }
    await writer.close();
    let sha256 = hash === null ? null : hash.digest('hex');
    let verified: TransferredFile['verified'] = 'size';
    if (sha256 === null || c.options.verifySha256 || end <= VERIFY_DIGEST_MAX_BYTES) {
      const [back, fromSource] = await Promise.all([c.dst.digest(tmp, end), sha256 === null ? c.src.digest(job.source, end) : Promise.resolve({ sha256 })]);
      if (back.sha256 !== fromSource.sha256) {
        throw new SshgateError(c.dst.failureCode, `the content that reached ${job.destination} (${c.dst.label}) differs from the source (sha256 ${back.sha256}, expected ${fromSource.sha256}); the destination was not touched`);
      }
      sha256 = back.sha256;
      verified = 'size+sha256';
    }
    // A replaced file keeps its mode (and owner, below); a new one takes the source's permission bits.
    const mode = job.existing !== null ? job.existing.mode & 0o7777 : job.mode & 0o777 & c.dst.newFileModeMask;
    await c.dst.finish(tmp, mode, job.existing === null ? null : { uid: job.existing.uid, gid: job.existing.gid });
    // Security: the directory could have been swapped for a symlink since it was checked.
    const dirNow = await c.dst.realDir(dir);
    if (dirNow !== dir) throw new SshgateError('PATH_DENIED', `${dir} (${c.dst.label}) changed while writing (now resolves to ${dirNow}); the file was not moved into place`);
    if (c.signal.aborted) throw signalError(c.signal);
    await c.dst.rename(tmp, job.destination, c.options.overwrite);
    return { source: job.source, destination: job.destination, bytes: end, sha256, resumed_from: start, verified, streamed };
  } catch (err) {
    const lost = isSshgateError(err, 'CONNECTION_LOST') && !c.signal.aborted;
    if (writer !== null) {
      const cleanup = async (): Promise<void> => {
        await writer?.close().catch(noop);
        if (!(c.options.resume && lost) && c.dst.alive()) await c.dst.unlink(tmp).catch(noop);
      };
      await settleWithin(cleanup(), CLEANUP_MS);
    }
    throw c.options.resume && lost && writer !== null ? withResumeHint(err, tmp, written) : err;
  } finally {
    await settleWithin(reader.close(), CLEANUP_MS);
  }
}

// ---------------------------------------------------------------------------------------------------------
// Planning and running a transfer.

interface Plan {
  source: string;
  destination: string;
  /** Directories to create, parents first. */
  dirs: { path: string; mode: number }[];
  jobs: CopyJob[];
  skipped: SkippedEntry[];
}

function tooMany(what: string, maxEntries: number): SshgateError {
  return new SshgateError('INVALID_INPUT', `the tree has more than ${maxEntries} ${what} (transfers.max_entries); narrow it with include/exclude or copy subdirectories one by one`, {
    details: { max_entries: maxEntries },
  });
}

async function planTree(src: Endpoint, dst: Endpoint, source: { path: string; info: EntryInfo }, destination: { path: string; info: EntryInfo | null }, options: TransferOptions, maxEntries: number): Promise<Plan> {
  const matchOptions = { dot: true, basename: true };
  const include = options.include.length === 0 ? null : picomatch([...options.include], matchOptions);
  const exclude = options.exclude.length === 0 ? null : picomatch([...options.exclude], matchOptions);
  const dirs: { path: string; rel: string; mode: number }[] = [];
  const jobs: (CopyJob & { rel: string })[] = [];
  const skipped: SkippedEntry[] = [];
  // Depth first, names sorted, so the order (and what a cap cuts) is stable.
  const stack: { dir: string; to: string; rel: string }[] = [{ dir: source.path, to: destination.path, rel: '' }];
  for (let top = stack.pop(); top !== undefined; top = stack.pop()) {
    const entries = (await src.list(top.dir)).sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    const subdirs: { dir: string; to: string; rel: string }[] = [];
    for (const entry of entries) {
      const rel = top.rel === '' ? entry.name : `${top.rel}/${entry.name}`;
      if (exclude?.(rel) === true) continue;
      const from = src.join(top.dir, entry.name);
      const to = dst.join(top.to, entry.name);
      const denied = src.denial(from) ?? dst.denial(to);
      if (denied !== null) {
        skipped.push({ path: rel, reason: denied });
        continue;
      }
      if (entry.info.kind === 'directory') {
        dirs.push({ path: to, rel, mode: (entry.info.mode & 0o777) | 0o700 });
        if (dirs.length > maxEntries) throw tooMany('directories', maxEntries);
        subdirs.push({ dir: from, to, rel });
      } else if (entry.info.kind === 'file') {
        if (include !== null && !include(rel)) continue;
        jobs.push({ source: from, destination: to, size: entry.info.size, mode: entry.info.mode, existing: null, rel });
        if (jobs.length > maxEntries) throw tooMany('files', maxEntries);
      } else {
        skipped.push({ path: rel, reason: entry.info.kind === 'symlink' ? 'symlink (not followed)' : 'not a regular file' });
      }
    }
    stack.push(...subdirs.reverse());
  }
  // With include globs, only the directories that lead to a copied file are created.
  const needed = new Set<string>();
  if (include !== null) {
    for (const job of jobs) {
      for (let rel = posix.dirname(job.rel); rel !== '.'; rel = posix.dirname(rel)) needed.add(rel);
    }
  }
  const wanted = include === null ? dirs : dirs.filter((d) => needed.has(d.rel));

  // What is already there: directories must be real directories (a symlink is never written through), files
  // are conflicts unless overwrite is set. Below a missing directory nothing exists.
  const plannedDirs: { path: string; mode: number }[] = [];
  const missing = new Set<string>();
  if (destination.info === null) {
    plannedDirs.push({ path: destination.path, mode: (source.info.mode & 0o777) | 0o700 });
    missing.add('');
  }
  const parentMissing = (rel: string): boolean => missing.has(rel.includes('/') ? posix.dirname(rel) : '');
  for (const d of wanted) {
    if (parentMissing(d.rel)) {
      missing.add(d.rel);
      plannedDirs.push({ path: d.path, mode: d.mode });
      continue;
    }
    const there = await dst.lstat(d.path);
    if (there === null) {
      missing.add(d.rel);
      plannedDirs.push({ path: d.path, mode: d.mode });
    } else if (there.kind !== 'directory') {
      throw new SshgateError(there.kind === 'symlink' ? 'PATH_DENIED' : dst.failureCode, `${d.path} (${dst.label}) exists and is ${there.kind === 'symlink' ? 'a symlink, which a tree copy does not write through' : `not a directory (${there.kind})`}`);
    }
  }
  const conflicts: string[] = [];
  const toCheck = jobs.filter((job) => !parentMissing(job.rel));
  for (let i = 0; i < toCheck.length; i += 32) {
    await Promise.all(
      toCheck.slice(i, i + 32).map(async (job) => {
        const there = await dst.lstat(job.destination);
        if (there === null) return;
        if (there.kind !== 'file') throw new SshgateError(dst.failureCode, `${job.destination} (${dst.label}) exists and is not a regular file (${there.kind})`);
        if (!options.overwrite) conflicts.push(job.destination);
        job.existing = there;
      }),
    );
  }
  if (conflicts.length > 0) {
    conflicts.sort();
    throw new SshgateError('ALREADY_EXISTS', `${conflicts.length} destination file(s) exist on ${dst.label} (${conflicts.slice(0, 5).join(', ')}${conflicts.length > 5 ? ', ...' : ''}); nothing was copied. Pass overwrite: true to replace them`, {
      details: { count: conflicts.length, first: conflicts.slice(0, 20) },
    });
  }
  return { source: source.path, destination: destination.path, dirs: plannedDirs, jobs, skipped };
}

async function plan(src: Endpoint, sourcePath: string, dst: Endpoint, destinationPath: string, options: TransferOptions, maxEntries: number): Promise<Plan> {
  const source = await src.resolveSource(sourcePath);
  const destination = await dst.resolveDestination(destinationPath);
  if (source.info.kind === 'directory') {
    if (!options.recursive) throw new SshgateError('INVALID_INPUT', `${source.path} (${src.label}) is a directory; pass recursive: true to copy the tree`);
    if (destination.info !== null && destination.info.kind !== 'directory') {
      throw new SshgateError('ALREADY_EXISTS', `${destination.path} (${dst.label}) exists and is not a directory; a tree needs a directory as destination`);
    }
    return planTree(src, dst, source, destination, options, maxEntries);
  }
  if (source.info.kind !== 'file') throw new SshgateError(src.failureCode, `${source.path} (${src.label}) is not a regular file`);
  // An existing directory as destination receives the file under its own name.
  const target = destination.info?.kind === 'directory' ? await dst.resolveDestination(dst.join(destination.path, src.basename(source.path))) : destination;
  if (target.info !== null) {
    if (target.info.kind !== 'file') throw new SshgateError(dst.failureCode, `${target.path} (${dst.label}) exists and is not a regular file (${target.info.kind})`);
    if (!options.overwrite) throw new SshgateError('ALREADY_EXISTS', `${target.path} exists on ${dst.label}; nothing was copied. Pass overwrite: true to replace it`);
  }
  return {
    source: source.path,
    destination: target.path,
    dirs: [],
    jobs: [{ source: source.path, destination: target.path, size: source.info.size, mode: source.info.mode, existing: target.info }],
    skipped: [],
  };
}

async function runTransfer(deps: FacadeDeps, src: Endpoint, sourcePath: string, dst: Endpoint, destinationPath: string, options: TransferOptions): Promise<TransferOutcome> {
  const started = performance.now();
  const settings = deps.transfers;
  const p = await plan(src, sourcePath, dst, destinationPath, options, settings.max_entries);
  const total = p.jobs.reduce((n, j) => n + j.size, 0);
  let done = 0;
  let sent = 0;
  let lastReport = 0;
  const report = (force: boolean): void => {
    const now = performance.now();
    if (!force && now - lastReport < PROGRESS_INTERVAL_MS) return;
    lastReport = now;
    const message = `${(done / MIB).toFixed(1)} of ${(total / MIB).toFixed(1)} MiB`;
    if (done <= total && total > 0) deps.progress(done, total, message);
    else deps.progress(done, undefined, message);
  };
  report(true);
  for (const d of p.dirs) await dst.mkdir(d.path, d.mode);

  const chunk = Math.max(1, Math.min(settings.chunk_bytes, src.maxRequestBytes, dst.maxRequestBytes));
  const files: TransferredFile[] = [];
  // A holder, not a variable: the workers set it while this function awaits them.
  const failure: { error: Error | null } = { error: null };
  let nextJob = 0;
  const worker = async (): Promise<void> => {
    while (failure.error === null) {
      const job = p.jobs[nextJob];
      if (job === undefined) return;
      nextJob += 1;
      let counted = 0;
      const c: CopyContext = {
        src,
        dst,
        options,
        chunk,
        concurrency: settings.concurrency,
        signal: deps.signal,
        onBytes: (n, wire) => {
          counted += n;
          done += n;
          if (wire) sent += n;
          report(false);
        },
      };
      try {
        files.push(await copyFile(c, job));
      } catch (err) {
        done -= counted;
        failure.error ??= err instanceof Error ? err : new Error(String(err));
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(FILES_IN_PARALLEL, Math.max(1, p.jobs.length)) }, worker));
  const failed = failure.error;
  if (failed !== null) {
    if (p.jobs.length > 1 && isSshgateError(failed)) {
      throw new SshgateError(failed.code, `${failed.message} (${files.length} of ${p.jobs.length} files were copied before the failure; each of them is complete)`, {
        cause: failed,
        ...(failed.hint === undefined ? {} : { hint: failed.hint }),
        details: { ...failed.details, files_copied: files.length, files_total: p.jobs.length },
      });
    }
    throw failed;
  }
  report(true);
  files.sort((a, b) => (a.destination < b.destination ? -1 : a.destination > b.destination ? 1 : 0));
  const durationMs = Math.max(1, Math.round(performance.now() - started));
  return {
    source: p.source,
    destination: p.destination,
    files,
    skipped: p.skipped,
    bytes: files.reduce((n, f) => n + f.bytes, 0),
    bytes_transferred: sent,
    duration_ms: durationMs,
    mib_per_s: Math.round((sent / MIB / (durationMs / 1000)) * 10) / 10,
  };
}

/** The part of a socket (or tunnel stream) that {@link corkable} uses. */
interface Corkable {
  cork(): void;
  uncork(): void;
  prependListener(event: 'data', listener: () => void): unknown;
  removeListener(event: 'data', listener: () => void): unknown;
}

/**
 * The connection's socket, for coalescing writes. ssh2 writes every SSH packet with its own system call
 * (Nagle is off): a 255 KiB SFTP write is 8 packets. The socket is ssh2's private field; without it, packets
 * simply go out one by one.
 */
function corkable(lease: Lease): Corkable | null {
  const sock = (lease.conn.client as unknown as { _sock?: Partial<Corkable> })._sock;
  if (typeof sock?.cork !== 'function' || typeof sock.uncork !== 'function') return null;
  if (typeof sock.prependListener !== 'function' || typeof sock.removeListener !== 'function') return null;
  return sock as Corkable;
}

/**
 * While a transfer runs, the writes ssh2 makes in answer to one incoming chunk (the packets it held back for a
 * window adjustment: up to 1 MiB of upload at a time) leave in one system call: the socket is corked before
 * ssh2 sees the chunk and uncorked on the next tick. Returns the function that stops it.
 */
function coalesceWrites(lease: Lease): () => void {
  const sock = corkable(lease);
  if (sock === null) return noop;
  const onData = (): void => {
    sock.cork();
    process.nextTick(() => {
      sock.uncork();
    });
  };
  sock.prependListener('data', onData);
  return () => {
    sock.removeListener('data', onData);
  };
}

/**
 * Runs `fn` with `host` as a transfer side, on a channel slot of a pooled connection and its SFTP session.
 * Unlike withSftp, the work is not cut off when the signal aborts: the copy loop stops by itself and removes
 * its temp file before the call returns (each wait it makes honours the signal).
 */
async function withRemote<T>(deps: FacadeDeps, host: ResolvedHost, fn: (side: Endpoint) => Promise<T>): Promise<T> {
  return deps.pool.withChannel(host, deps.signal, async (lease) => {
    let sftp: SFTPWrapper;
    try {
      sftp = await abortable(lease.conn.sftp(), deps.signal);
    } catch (err) {
      if (deps.signal.aborted) throw err;
      const cause = err instanceof SshgateError && err.cause instanceof Error ? err.cause : (err as Error);
      throw cause instanceof ChannelOpenError ? cause : classifyOpenError(cause);
    }
    const stop = coalesceWrites(lease);
    try {
      return await fn(remoteEndpoint(host, sftp, lease, deps));
    } finally {
      stop();
    }
  });
}

/** Creates the transfer operations for one call. */
export function createTransferFacade(deps: FacadeDeps): TransferFacade {
  const local = (): Endpoint => localEndpoint(deps.localPaths, deps.signal);
  return {
    upload: (host, localPath, remotePath, options) => withRemote(deps, host, (remote) => runTransfer(deps, local(), localPath, remote, remotePath, options)),
    download: (host, remotePath, localPath, options) => withRemote(deps, host, (remote) => runTransfer(deps, remote, remotePath, local(), localPath, options)),
    copyBetweenHosts: (source, sourcePath, destination, destinationPath, options) =>
      withRemote(deps, source, (from) => withRemote(deps, destination, (to) => runTransfer(deps, from, sourcePath, to, destinationPath, options))),
  };
}
