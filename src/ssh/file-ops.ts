// File operations beyond read and write: find, hash, whole-file text reads for diff/edit/patch, verified
// replacement, mkdir, remove, copy and move; every path confined to the host's roots, every walk done over
// SFTP without following symlinks out of them, and no remote command built from a path except a quoted,
// confined one for hashing.
import { createHash } from 'node:crypto';
import picomatch from 'picomatch';
import type { ClientChannel, SFTPWrapper, Stats } from 'ssh2';
import type { ResolvedHost } from '../config/load.js';
import { SshgateError } from '../errors.js';
import { checkCommand } from '../policy/command-policy.js';
import { shellQuote } from '../policy/shell-quote.js';
import { tierAllows } from '../policy/tiers.js';
import { execCommand } from './exec.js';
import type { FacadeDeps } from './facade.js';
import { randomToken } from './exec.js';
import { personalityOf, powerShellCommand, powerShellHashScript, type HashAlgorithm } from './personality.js';
import { abortable, classifyOpenError, type ConnectionPool } from './pool.js';
import {
  assertAllowed,
  confineEntry,
  confineExisting,
  confineForWrite,
  hashRemoteFile,
  hasExtension,
  isAllowed,
  isNotFound,
  lexicalPath,
  mkdirParents,
  readChunks,
  sftpOps,
  withSftp,
  fileKindOfMode,
  writeAtomic,
  writeAtomicWith,
  type FillResult,
  type WriteOutcome,
} from './sftp.js';

/** The type of a directory entry, as the file tools name it. */
export type EntryType = 'file' | 'directory' | 'symlink' | 'fifo' | 'socket' | 'block' | 'char' | 'other';

/** Options of {@link FileOpsFacade.findFiles}. */
export interface FindOptions {
  /** picomatch glob, matched against the entry name (or, when it contains `/`, the path relative to the start). */
  name?: string;
  type?: EntryType;
  /** Directory levels below the start to look at (1: its entries only). Absent: no limit. */
  maxDepth?: number;
  /** Inclusive size bounds in bytes. */
  minSize?: number;
  maxSize?: number;
  /** Modification time bounds (inclusive), milliseconds since the epoch. */
  modifiedAfterMs?: number;
  modifiedBeforeMs?: number;
  /** Matches returned at most. */
  limit: number;
  /** Descend into symlinked directories whose real path stays inside the host's rules (each real directory once). */
  followSymlinks: boolean;
}

/** One match of a find. */
export interface FoundEntry {
  path: string;
  type: EntryType;
  size: number;
  mode: string;
  mtime: string;
  link_target: string | null;
  depth: number;
}

/** Result of {@link FileOpsFacade.findFiles}. */
export interface FindOutcome {
  path: string;
  matches: FoundEntry[];
  truncated: boolean;
  truncated_reason: 'limit' | 'scan_limit' | null;
  scanned: number;
  skipped: { path: string; reason: string }[];
}

/** Result of {@link FileOpsFacade.hashFile}. */
export interface HashOutcome {
  path: string;
  algorithm: HashAlgorithm;
  digest: string;
  size: number;
  method: 'sftp' | 'remote';
}

/** A whole file read as bytes (diff, edit, patch). */
export interface FileSnapshot {
  path: string;
  data: Buffer;
  sha256: string;
  size: number;
}

/** Result of {@link FileOpsFacade.rewriteTextFile}. */
export interface RewriteOutcome {
  path: string;
  before: string;
  after: string;
  before_sha256: string;
  after_sha256: string;
  written: boolean;
  write: WriteOutcome | null;
}

/** Result of {@link FileOpsFacade.replaceFile}. */
export interface ReplaceOutcome extends WriteOutcome {
  created_directories: string[];
}

/** Result of {@link FileOpsFacade.removePath}. */
export interface RemoveOutcome {
  path: string;
  type: EntryType;
  /** Entries removed (or that would be, in a dry run), the path itself included. */
  entries: number;
  /** The paths that go (dry run), children before their directory; capped, see `listed_truncated`. */
  listed: string[];
  listed_truncated: boolean;
  dry_run: boolean;
  /** Dry run only: true when the real call would be refused for exceeding limits.max_remove_entries. */
  over_limit: boolean;
}

/** Result of {@link FileOpsFacade.copyPath} and {@link FileOpsFacade.movePath}. */
export interface CopyOutcome {
  source: string;
  destination: string;
  type: EntryType;
  files: number;
  directories: number;
  symlinks: number;
  bytes: number;
  skipped: { path: string; reason: string }[];
  method: 'copy-data' | 'stream' | 'rename' | 'copy+remove';
  verified: 'size' | 'size+sha256' | null;
}

/** The file operations tools may use (see facade.ts); each one honours the call's signal. */
export interface FileOpsFacade {
  /** The limits these operations enforce (config `limits`). */
  readonly fileOpsLimits: { maxDiffBytes: number; maxRemoveEntries: number; maxWriteBytes: number };
  findFiles(host: ResolvedHost, path: string, options: FindOptions): Promise<FindOutcome>;
  hashFile(host: ResolvedHost, path: string, options: { algorithm: HashAlgorithm; method: 'auto' | 'sftp' | 'remote' }): Promise<HashOutcome>;
  /**
   * Reads a whole file of at most limits.max_diff_bytes. `secondary`: the host is not the call's own (a diff
   * against `other_host`), so its `allow_sftp_read` toggle is checked here.
   */
  snapshotFile(host: ResolvedHost, path: string, options: { secondary: boolean }): Promise<FileSnapshot>;
  rewriteTextFile(
    host: ResolvedHost,
    path: string,
    rewrite: (before: string) => string,
    options: { expectedSha256?: string; dryRun: boolean; backup: boolean },
  ): Promise<RewriteOutcome>;
  replaceFile(
    host: ResolvedHost,
    path: string,
    data: Buffer,
    options: { mode?: number; expectedSha256?: string; createParents: boolean; backup: boolean },
  ): Promise<ReplaceOutcome>;
  createDirectory(host: ResolvedHost, path: string, options: { parents: boolean; mode: number }): Promise<{ path: string; created: string[] }>;
  removePath(host: ResolvedHost, path: string, options: { recursive: boolean; dryRun: boolean }): Promise<RemoveOutcome>;
  copyPath(host: ResolvedHost, source: string, destination: string, options: { recursive: boolean; overwrite: boolean }): Promise<CopyOutcome>;
  movePath(host: ResolvedHost, source: string, destination: string, options: { overwrite: boolean; recursive: boolean }): Promise<CopyOutcome>;
}

/** Files at least this large are hashed by the remote `sha256sum` (when allowed): no bytes cross the network. */
export const REMOTE_HASH_MIN_BYTES = 16 * 1024 * 1024;
/** Entries a find examines before it stops with `truncated_reason: scan_limit`. */
const FIND_SCAN_LIMIT = 200_000;
/** Paths listed by a dry-run removal. */
const REMOVE_LIST_MAX = 500;
/** Requests in flight when removing or copying many entries. */
const TREE_CONCURRENCY = 16;

const entryType: (mode: number) => EntryType = fileKindOfMode;

function octal(mode: number): string {
  return (mode & 0o7777).toString(8).padStart(4, '0');
}

/** One entry of a walked tree. */
interface TreeEntry {
  path: string;
  stats: Stats;
  type: EntryType;
}

/**
 * Lists a directory tree over SFTP in pre-order (a directory before its entries), never following symlinks.
 * Every entry must pass the host's rules: a restricted path inside the tree refuses the whole operation.
 * Stops counting at `ceiling` entries.
 * @throws SshgateError PATH_DENIED naming the restricted entry, SFTP errors.
 */
async function walkTree(
  sftp: SFTPWrapper,
  host: ResolvedHost,
  root: string,
  rootStats: Stats,
  ceiling: number,
  signal: AbortSignal,
): Promise<{ entries: TreeEntry[]; complete: boolean }> {
  const personality = personalityOf(host);
  const entries: TreeEntry[] = [{ path: root, stats: rootStats, type: entryType(rootStats.mode) }];
  const stack: string[] = rootStats.isDirectory() ? [root] : [];
  while (stack.length > 0) {
    if (signal.aborted) throw abortError(signal);
    const dir = stack.pop() as string;
    const list = await sftpOps.readdir(sftp, dir);
    list.sort((a, b) => (a.filename < b.filename ? -1 : a.filename > b.filename ? 1 : 0));
    const subdirs: string[] = [];
    for (const item of list) {
      const path = personality.join(dir, item.filename);
      // Security: the operation would touch this entry too, so a restricted entry refuses the whole tree.
      assertAllowed(host, path);
      const type = entryType(item.attrs.mode);
      entries.push({ path, stats: item.attrs, type });
      if (entries.length >= ceiling) return { entries, complete: false };
      if (type === 'directory') subdirs.push(path);
    }
    for (let i = subdirs.length - 1; i >= 0; i -= 1) stack.push(subdirs[i] as string);
  }
  return { entries, complete: true };
}

function abortError(signal: AbortSignal): SshgateError {
  const reason: unknown = signal.reason;
  return reason instanceof SshgateError ? reason : new SshgateError('CANCELLED', 'the call was cancelled');
}

/** Runs `fn` over `items` with at most `limit` in flight; the first failure is thrown after all settle. */
async function eachLimited<T>(items: readonly T[], limit: number, fn: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  const state: { failure: Error | null } = { failure: null };
  const worker = async (): Promise<void> => {
    while (next < items.length && state.failure === null) {
      const item = items[next] as T;
      next += 1;
      try {
        await fn(item);
      } catch (err) {
        state.failure ??= err instanceof Error ? err : new Error(String(err));
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  if (state.failure !== null) throw state.failure;
}

/** Refuses an operation on a configured root itself (removing or moving it would leave the host without it). */
function refuseRoot(host: ResolvedHost, path: string, what: string): void {
  const personality = personalityOf(host);
  for (const [i, root] of host.roots.entries()) {
    const normalised = personality.check(root, {});
    if (normalised.allowed && personality.isWithin(normalised.path, path) && personality.isWithin(path, normalised.path)) {
      throw new SshgateError('PATH_DENIED', `${host.alias}: ${path} is the configured root hosts.${host.alias}.roots[${i}]; ${what} a root is refused`, {
        details: { rule: 'roots' },
      });
    }
  }
}

/** Removes the walked entries, children before their directory. */
async function removeEntries(sftp: SFTPWrapper, entries: readonly TreeEntry[], signal: AbortSignal): Promise<void> {
  // Pre-order reversed is post-order: every entry comes before the directory holding it.
  const byDepth = new Map<number, TreeEntry[]>();
  for (const e of entries) {
    const depth = e.path.split('/').length;
    const group = byDepth.get(depth) ?? [];
    group.push(e);
    byDepth.set(depth, group);
  }
  for (const depth of [...byDepth.keys()].sort((a, b) => b - a)) {
    if (signal.aborted) throw abortError(signal);
    await eachLimited(byDepth.get(depth) ?? [], TREE_CONCURRENCY, async (e) => {
      await (e.type === 'directory' ? sftpOps.rmdir(sftp, e.path) : sftpOps.unlink(sftp, e.path));
    });
  }
}

/**
 * Copies the content of the open file `from` into the open file `to`: with the server-side `copy-data`
 * extension when offered and the size is known (nothing crosses the network), else streamed with parallel
 * reads and writes, hashing on the way.
 */
async function copyContent(
  sftp: SFTPWrapper,
  from: Buffer,
  fromPath: string,
  fromStats: Stats,
  to: Buffer,
  toPath: string,
  signal: AbortSignal,
): Promise<FillResult & { method: 'copy-data' | 'stream' }> {
  if (fromStats.size > 0 && hasExtension(sftp, 'copy-data')) {
    await sftpOps.copyData(sftp, from, to, 0, toPath);
    const after = await sftpOps.fstat(sftp, from, fromPath);
    if (after.size !== fromStats.size) throw new SshgateError('REMOTE_FAILURE', `${fromPath} changed size while it was copied; nothing was replaced`);
    return { bytes: fromStats.size, sha256: null, method: 'copy-data' };
  }
  const hash = createHash('sha256');
  let position = 0;
  const writes: Promise<undefined>[] = [];
  try {
    for await (const chunk of readChunks(sftp, from, fromPath, 0, fromStats.size, signal, 256 * 1024, 16)) {
      hash.update(chunk);
      const write = sftpOps.write(sftp, to, chunk, position, toPath);
      write.catch(() => undefined);
      writes.push(write);
      position += chunk.length;
      if (writes.length >= 16) await writes.shift();
    }
    await Promise.all(writes);
  } catch (err) {
    await Promise.allSettled(writes);
    throw err;
  }
  return { bytes: position, sha256: hash.digest('hex'), method: 'stream' };
}

interface TreeCopyStats {
  files: number;
  directories: number;
  symlinks: number;
  bytes: number;
  skipped: { path: string; reason: string }[];
  method: 'copy-data' | 'stream';
}

/** Copies one regular file to a new path (no temp file: the caller copies into a temp tree). */
async function copyFileTo(sftp: SFTPWrapper, source: string, destination: string, signal: AbortSignal): Promise<{ bytes: number; method: 'copy-data' | 'stream'; stats: Stats }> {
  const from = await sftpOps.open(sftp, source, 'r');
  try {
    const stats = await sftpOps.fstat(sftp, from, source);
    const to = await sftpOps.open(sftp, destination, 'wx', 0o600);
    let result: FillResult & { method: 'copy-data' | 'stream' };
    try {
      result = await copyContent(sftp, from, source, stats, to, destination, signal);
      const written = await sftpOps.fstat(sftp, to, destination);
      if (written.size !== result.bytes) {
        throw new SshgateError('REMOTE_FAILURE', `short write to ${destination}: ${written.size} of ${result.bytes} bytes reached the disk (disk full?)`);
      }
    } finally {
      await sftpOps.close(sftp, to, destination).catch(() => undefined);
    }
    await sftpOps.setstat(sftp, destination, { mode: stats.mode & 0o7777 });
    await sftpOps.utimes(sftp, destination, stats.atime, stats.mtime);
    return { bytes: result.bytes, method: result.method, stats };
  } finally {
    await sftpOps.close(sftp, from, source).catch(() => undefined);
  }
}

/**
 * Copies the walked tree `entries` (rooted at `source`) to `destination`, which must not exist: everything is
 * copied into a temp directory next to the destination, which is renamed into place at the end, so a failure
 * leaves no half-copied tree. Symlinks are copied as links; fifos, sockets and devices are skipped.
 */
async function copyTree(
  sftp: SFTPWrapper,
  host: ResolvedHost,
  source: string,
  entries: readonly TreeEntry[],
  destination: { path: string; dir: string },
  signal: AbortSignal,
): Promise<TreeCopyStats> {
  const personality = personalityOf(host);
  const tmp = personality.join(destination.dir, `.${personality.basename(destination.path)}.sshgate-${randomToken(6)}.tmp`);
  const out: TreeCopyStats = { files: 0, directories: 0, symlinks: 0, bytes: 0, skipped: [], method: 'stream' };
  const mapped = (path: string): string => (path === source ? tmp : personality.join(tmp, path.slice(source.length + 1)));
  const created: TreeEntry[] = [];
  try {
    for (const e of entries) {
      if (e.type !== 'directory') continue;
      await sftpOps.mkdir(sftp, mapped(e.path), 0o700);
      created.push({ ...e, path: mapped(e.path) });
      out.directories += 1;
    }
    await eachLimited(
      entries.filter((e) => e.type !== 'directory'),
      TREE_CONCURRENCY,
      async (e) => {
        if (signal.aborted) throw abortError(signal);
        const target = mapped(e.path);
        if (e.type === 'file') {
          const copied = await copyFileTo(sftp, e.path, target, signal);
          out.files += 1;
          out.bytes += copied.bytes;
          if (copied.method === 'copy-data') out.method = 'copy-data';
        } else if (e.type === 'symlink') {
          await sftpOps.symlink(sftp, await sftpOps.readlink(sftp, e.path), target);
          out.symlinks += 1;
        } else {
          out.skipped.push({ path: e.path, reason: `a ${e.type} is not copied` });
        }
      },
    );
    // Directory modes last (deepest first), so a read-only directory could still be filled.
    for (const e of [...created].reverse()) {
      await sftpOps.setstat(sftp, e.path, { mode: e.stats.mode & 0o7777 });
      await sftpOps.utimes(sftp, e.path, e.stats.atime, e.stats.mtime);
    }
    if (signal.aborted) throw abortError(signal);
    // Security: the destination directory could have been swapped for a symlink since it was checked.
    const dirNow = await sftpOps.realpath(sftp, destination.dir);
    if (dirNow !== destination.dir) throw new SshgateError('PATH_DENIED', `${destination.dir} changed while copying (now resolves to ${dirNow}); nothing was put in place`);
    // Plain SFTP rename refuses an existing destination: nothing that appeared meanwhile is replaced.
    await sftpOps.rename(sftp, tmp, destination.path);
    return out;
  } catch (err) {
    await removeTempTree(sftp, host, tmp);
    throw err;
  }
}

/** Best-effort removal of a temp tree this call created (its modes may have been set read-only already). */
async function removeTempTree(sftp: SFTPWrapper, host: ResolvedHost, tmp: string): Promise<void> {
  try {
    const stats = await sftpOps.lstat(sftp, tmp);
    const signal = new AbortController().signal;
    const { entries } = await walkTree(sftp, host, tmp, stats, Number.MAX_SAFE_INTEGER, signal);
    for (const e of entries) if (e.type === 'directory') await sftpOps.setstat(sftp, e.path, { mode: 0o700 }).catch(() => undefined);
    await removeEntries(sftp, entries, signal);
  } catch {
    // Nothing more can be done; the temp name says what it is.
  }
}

/** Runs a fixed command without a login-shell wrapper (Windows: cmd.exe or PowerShell is the server's shell). */
async function execRaw(pool: ConnectionPool, host: ResolvedHost, command: string, signal: AbortSignal): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return pool.withChannel(host, signal, async (lease) => {
    const channel = await new Promise<ClientChannel>((resolve, reject) => {
      try {
        lease.conn.client.exec(command, (err, ch) => {
          if (err !== undefined) reject(classifyOpenError(err));
          else resolve(ch);
        });
      } catch (err) {
        reject(classifyOpenError(err as Error));
      }
    });
    const done = new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve) => {
      let stdout = '';
      let stderr = '';
      let code: number | null = null;
      channel.on('data', (d: Buffer) => {
        if (stdout.length < 65536) stdout += d.toString('utf8');
      });
      channel.stderr.on('data', (d: Buffer) => {
        if (stderr.length < 65536) stderr += d.toString('utf8');
      });
      channel.on('exit', (c: number | null) => {
        code = c;
      });
      channel.on('error', () => undefined);
      channel.on('close', () => {
        resolve({ code, stdout, stderr });
      });
      channel.end();
    });
    try {
      return await abortable(done, signal);
    } finally {
      channel.close();
    }
  });
}

function parseDigest(text: string, algorithm: HashAlgorithm): string | null {
  const length = { sha256: 64, sha512: 128, md5: 32 }[algorithm];
  // sha256sum prefixes the line with a backslash when the file name needed escaping.
  const match = new RegExp(`^\\\\?([0-9a-fA-F]{${length}})\\b`, 'u').exec(text.trim());
  return match?.[1]?.toLowerCase() ?? null;
}

/** Creates the file operations for one call. */
export function createFileOpsFacade(deps: FacadeDeps): FileOpsFacade {
  const { pool, signal } = deps;
  const maxDiffBytes = deps.limits.max_diff_bytes;
  const maxRemoveEntries = deps.limits.max_remove_entries;

  /** Whether the remote hash command may run: exec allowed on the host and by its command rules. */
  const remoteHashCommand = (host: ResolvedHost, real: string, algorithm: HashAlgorithm): { command: string; raw: boolean } | string => {
    if (!host.allowExecute) return `commands are turned off on host ${host.alias} (hosts.${host.alias}.allow_execute: false)`;
    if (!tierAllows(host.tier, 'exec')) return `host ${host.alias} allows at most tier ${host.tier}, and running a hash command needs exec`;
    // Security: a host whose commands need a human's approval gets none from a read tool behind its back.
    if (host.approval.length > 0) return `host ${host.alias} has approval rules (hosts.${host.alias}.approval)`;
    const personality = personalityOf(host);
    if (personality.platform === 'windows') return { command: powerShellCommand(powerShellHashScript(personality.toNative(real), algorithm)), raw: true };
    if (host.platform === 'cli') return `host ${host.alias} is a CLI device`;
    const command = `${algorithm}sum -- ${shellQuote(real)}`;
    const decision = checkCommand(command, host.commands ?? undefined);
    if (!decision.allowed) return `the command policy of host ${host.alias} refuses ${algorithm}sum (${decision.rule})`;
    return { command, raw: false };
  };

  const readWhole = async (sftp: SFTPWrapper, path: string, limit: number): Promise<FileSnapshot> => {
    const handle = await sftpOps.open(sftp, path, 'r');
    try {
      const stats = await sftpOps.fstat(sftp, handle, path);
      if (stats.isDirectory()) throw new SshgateError('INVALID_INPUT', `${path} is a directory`);
      const tooBig = (size: number): SshgateError =>
        new SshgateError('INVALID_INPUT', `${path} is ${size} bytes or more; the limit is ${limit} bytes (limits.max_diff_bytes)`, { details: { size } });
      if (stats.size > limit) throw tooBig(stats.size);
      const chunks: Buffer[] = [];
      let bytes = 0;
      // Read until end of file, not the reported size: /proc files report 0 bytes.
      for await (const chunk of readChunks(sftp, handle, path, 0, stats.size, signal, 256 * 1024, 16)) {
        bytes += chunk.length;
        if (bytes > limit) throw tooBig(bytes);
        chunks.push(chunk);
      }
      const data = Buffer.concat(chunks);
      return { path, data, sha256: createHash('sha256').update(data).digest('hex'), size: data.length };
    } finally {
      await sftpOps.close(sftp, handle, path).catch(() => undefined);
    }
  };

  return {
    fileOpsLimits: { maxDiffBytes, maxRemoveEntries, maxWriteBytes: deps.limits.max_write_bytes },

    findFiles(host, path, options) {
      return withSftp(pool, host, signal, async (sftp) => {
        const personality = personalityOf(host);
        const start = await confineExisting(sftp, host, path);
        const startStats = await sftpOps.stat(sftp, start);
        if (!startStats.isDirectory()) throw new SshgateError('INVALID_INPUT', `${start} is not a directory; ssh_find_files searches under a directory`);
        const glob = options.name;
        const byPath = glob?.includes('/') === true;
        const matcher = glob === undefined ? null : picomatch(glob, { dot: true, nocase: personality.platform === 'windows' });
        const matches: FoundEntry[] = [];
        const skipped: FindOutcome['skipped'] = [];
        const skip = (p: string, reason: string): void => {
          if (skipped.length < 50) skipped.push({ path: p, reason });
        };
        const visited = new Set<string>([start]);
        // Depth-first: a stack of (directory to read, path to report it as, depth of its entries).
        const stack: { read: string; shown: string; depth: number }[] = [{ read: start, shown: start, depth: 1 }];
        let scanned = 0;
        let truncatedReason: FindOutcome['truncated_reason'] = null;
        walk: while (stack.length > 0) {
          if (signal.aborted) throw abortError(signal);
          const dir = stack.pop() as { read: string; shown: string; depth: number };
          let list;
          try {
            list = await sftpOps.readdir(sftp, dir.read);
          } catch (err) {
            if (dir.read === start) throw err;
            skip(dir.shown, err instanceof SshgateError ? err.code : 'unreadable');
            continue;
          }
          list.sort((a, b) => (a.filename < b.filename ? -1 : a.filename > b.filename ? 1 : 0));
          const descend: { read: string; shown: string; depth: number }[] = [];
          for (const item of list) {
            scanned += 1;
            if (scanned > FIND_SCAN_LIMIT) {
              truncatedReason = 'scan_limit';
              break walk;
            }
            const shown = personality.join(dir.shown, item.filename);
            const real = personality.join(dir.read, item.filename);
            // Security: restricted paths inside the start directory are neither listed nor entered.
            if (!isAllowed(host, real) || !isAllowed(host, shown)) {
              skip(shown, 'restricted');
              continue;
            }
            const attrs = item.attrs;
            const type = entryType(attrs.mode);
            let linkTarget: string | null = null;
            if (type === 'symlink') linkTarget = await sftpOps.readlink(sftp, real).catch(() => null);
            const relative = shown.slice(start.length).replace(/^\//u, '');
            const nameOk = matcher === null || matcher(byPath ? relative : item.filename);
            const typeOk = options.type === undefined || options.type === type;
            const sizeOk = (options.minSize === undefined || attrs.size >= options.minSize) && (options.maxSize === undefined || attrs.size <= options.maxSize);
            const mtimeMs = attrs.mtime * 1000;
            const timeOk =
              (options.modifiedAfterMs === undefined || mtimeMs >= options.modifiedAfterMs) && (options.modifiedBeforeMs === undefined || mtimeMs <= options.modifiedBeforeMs);
            if (nameOk && typeOk && sizeOk && timeOk) {
              if (matches.length >= options.limit) {
                truncatedReason = 'limit';
                break walk;
              }
              matches.push({ path: shown, type, size: attrs.size, mode: octal(attrs.mode), mtime: new Date(attrs.mtime * 1000).toISOString(), link_target: linkTarget, depth: dir.depth });
            }
            if (options.maxDepth !== undefined && dir.depth >= options.maxDepth) continue;
            if (type === 'directory') {
              descend.push({ read: real, shown, depth: dir.depth + 1 });
            } else if (type === 'symlink' && options.followSymlinks) {
              // Security: a symlink is entered only when its real path passes the rules, and each real directory once.
              const target = await sftpOps.realpath(sftp, real).catch(() => null);
              if (target === null) continue;
              if (!isAllowed(host, target)) {
                skip(shown, `symlink leads out of the allowed paths (${target})`);
                continue;
              }
              const st = await sftpOps.stat(sftp, target).catch(() => null);
              if (st?.isDirectory() !== true || visited.has(target)) continue;
              visited.add(target);
              descend.push({ read: target, shown, depth: dir.depth + 1 });
            }
          }
          for (let i = descend.length - 1; i >= 0; i -= 1) stack.push(descend[i] as { read: string; shown: string; depth: number });
        }
        return { path: start, matches, truncated: truncatedReason !== null, truncated_reason: truncatedReason, scanned: Math.min(scanned, FIND_SCAN_LIMIT), skipped };
      });
    },

    async hashFile(host, path, options) {
      const { real, size } = await withSftp(pool, host, signal, async (sftp) => {
        const r = await confineExisting(sftp, host, path);
        const st = await sftpOps.stat(sftp, r);
        if (st.isDirectory()) throw new SshgateError('INVALID_INPUT', `${r} is a directory; ssh_hash_file hashes a file`);
        return { real: r, size: st.size };
      });
      const remote = options.method === 'sftp' ? null : remoteHashCommand(host, real, options.algorithm);
      if (options.method === 'remote' && typeof remote === 'string') throw new SshgateError('POLICY_DENIED', `method remote: ${remote}; use method sftp`);
      const wantRemote = options.method === 'remote' || (options.method === 'auto' && size >= REMOTE_HASH_MIN_BYTES);
      if (wantRemote && remote !== null && typeof remote !== 'string') {
        const result = remote.raw
          ? await execRaw(pool, host, remote.command, signal)
          : await execCommand(pool, host, remote.command, { maxOutputBytes: 16 * 1024, signal }).then((r) => ({ code: r.exit_code, stdout: r.stdout, stderr: r.stderr }));
        const digest = result.code === 0 ? parseDigest(result.stdout, options.algorithm) : null;
        if (digest !== null) return { path: real, algorithm: options.algorithm, digest, size, method: 'remote' };
        if (options.method === 'remote') {
          throw new SshgateError('REMOTE_FAILURE', `the remote hash command failed (exit ${result.code ?? 'none'}): ${result.stderr.slice(0, 300)}`);
        }
      }
      return withSftp(pool, host, signal, async (sftp) => {
        const hashed = await hashRemoteFile(sftp, real, options.algorithm, signal);
        return { path: real, algorithm: options.algorithm, digest: hashed.digest, size: hashed.bytes, method: 'sftp' as const };
      });
    },

    snapshotFile(host, path, options) {
      if (options.secondary && !host.allowSftpRead) {
        return Promise.reject(
          new SshgateError('POLICY_DENIED', `reading files is turned off on host ${host.alias} (config key hosts.${host.alias}.allow_sftp_read: false)`, {
            details: { rule: 'allow_sftp_read' },
          }),
        );
      }
      return withSftp(pool, host, signal, async (sftp) => readWhole(sftp, await confineExisting(sftp, host, path), maxDiffBytes));
    },

    rewriteTextFile(host, path, rewrite, options) {
      return withSftp(pool, host, signal, async (sftp, connection) => {
        const target = await confineForWrite(sftp, host, path);
        if (target.existing === null) throw new SshgateError('REMOTE_NOT_FOUND', `${target.path}: no such file (create it with ssh_write_file)`);
        const snapshot = await readWhole(sftp, target.path, maxDiffBytes);
        if (options.expectedSha256 !== undefined && snapshot.sha256 !== options.expectedSha256.toLowerCase()) {
          throw new SshgateError(
            'REMOTE_FAILURE',
            `${target.path} changed since it was read: expected sha256 ${options.expectedSha256}, found ${snapshot.sha256}; read it again before editing`,
            { details: { current_sha256: snapshot.sha256 } },
          );
        }
        const before = decodeText(snapshot.data, target.path);
        const after = rewrite(before);
        const data = Buffer.from(after, 'utf8');
        const afterSha = createHash('sha256').update(data).digest('hex');
        if (options.dryRun || after === before) {
          return { path: target.path, before, after, before_sha256: snapshot.sha256, after_sha256: afterSha, written: false, write: null };
        }
        const write = await writeAtomic(sftp, host, target, data, { signal, connection, expectCurrentSha256: snapshot.sha256, backup: options.backup });
        return { path: target.path, before, after, before_sha256: snapshot.sha256, after_sha256: afterSha, written: true, write };
      });
    },

    replaceFile(host, path, data, options) {
      return withSftp(pool, host, signal, async (sftp, connection) => {
        let createdDirectories: string[] = [];
        if (options.createParents) {
          const personality = personalityOf(host);
          createdDirectories = (await mkdirParents(sftp, host, personality.dirname(lexicalPath(host, path)), 0o755)).created;
        }
        const target = await confineForWrite(sftp, host, path);
        let expected: string | null | undefined;
        if (options.expectedSha256 !== undefined) {
          expected = options.expectedSha256.toLowerCase();
          const current = target.existing === null ? null : (await hashRemoteFile(sftp, target.path, 'sha256', signal)).digest;
          if (current !== expected) {
            throw new SshgateError(
              'REMOTE_FAILURE',
              `${path} changed since it was read: expected sha256 ${options.expectedSha256}, found ${current ?? 'no file'}; read it again before writing`,
              { details: { current_sha256: current } },
            );
          }
        }
        const outcome = await writeAtomic(sftp, host, target, data, {
          signal,
          connection,
          backup: options.backup,
          ...(options.mode === undefined ? {} : { mode: options.mode }),
          ...(expected === undefined ? {} : { expectCurrentSha256: expected }),
        });
        return { ...outcome, created_directories: createdDirectories };
      });
    },

    createDirectory(host, path, options) {
      return withSftp(pool, host, signal, async (sftp) => {
        if (options.parents) return mkdirParents(sftp, host, path, options.mode);
        const entry = await confineEntry(sftp, host, path);
        if (entry.stats !== null) {
          throw new SshgateError('REMOTE_FAILURE', `${entry.path} already exists (as a ${entryType(entry.stats.mode)}); pass parents: true to accept an existing directory`);
        }
        await sftpOps.mkdir(sftp, entry.path, options.mode);
        await sftpOps.setstat(sftp, entry.path, { mode: options.mode });
        return { path: entry.path, created: [entry.path] };
      });
    },

    removePath(host, path, options) {
      return withSftp(pool, host, signal, async (sftp) => {
        refuseRoot(host, lexicalPath(host, path), 'removing');
        const entry = await confineEntry(sftp, host, path);
        if (entry.stats === null) throw new SshgateError('REMOTE_NOT_FOUND', `${entry.path}: no such file or directory`);
        refuseRoot(host, entry.path, 'removing');
        const type = entryType(entry.stats.mode);
        let entries: TreeEntry[] = [{ path: entry.path, stats: entry.stats, type }];
        if (type === 'directory' && !options.recursive) {
          const inside = await sftpOps.readdir(sftp, entry.path);
          if (inside.length > 0) {
            throw new SshgateError('INVALID_INPUT', `${entry.path} is a directory that is not empty (${inside.length} entries directly in it); pass recursive: true to remove the tree`, {
              details: { entries: inside.length },
            });
          }
        }
        if (type === 'directory') {
          const ceiling = Math.max(maxRemoveEntries * 10, 100_000);
          const walked = await walkTree(sftp, host, entry.path, entry.stats, ceiling, signal);
          entries = walked.entries;
          const count = walked.complete ? `${entries.length}` : `more than ${ceiling}`;
          if (entries.length > maxRemoveEntries && !options.dryRun) {
            throw new SshgateError(
              'POLICY_DENIED',
              `${entry.path} holds ${count} entries, more than limits.max_remove_entries (${maxRemoveEntries}); remove smaller subtrees, or an operator can raise the limit`,
              { details: { rule: 'limits.max_remove_entries', entries: entries.length } },
            );
          }
        }
        const postOrder = [...entries].reverse();
        if (options.dryRun) {
          return {
            path: entry.path,
            type,
            entries: entries.length,
            listed: postOrder.slice(0, REMOVE_LIST_MAX).map((e) => e.path),
            listed_truncated: postOrder.length > REMOVE_LIST_MAX,
            dry_run: true,
            over_limit: entries.length > maxRemoveEntries,
          };
        }
        await removeEntries(sftp, entries, signal);
        return { path: entry.path, type, entries: entries.length, listed: [], listed_truncated: false, dry_run: false, over_limit: false };
      });
    },

    copyPath(host, source, destination, options) {
      return withSftp(pool, host, signal, async (sftp) => copyOnce(sftp, host, source, destination, options));
    },

    movePath(host, source, destination, options) {
      return withSftp(pool, host, signal, async (sftp) => {
        const personality = personalityOf(host);
        refuseRoot(host, lexicalPath(host, source), 'moving');
        const from = await confineEntry(sftp, host, source);
        if (from.stats === null) throw new SshgateError('REMOTE_NOT_FOUND', `${from.path}: no such file or directory`);
        refuseRoot(host, from.path, 'moving');
        const type = entryType(from.stats.mode);
        if (type === 'directory' && !options.recursive) {
          throw new SshgateError('INVALID_INPUT', `${from.path} is a directory; pass recursive: true to move it with everything in it`);
        }
        if (type === 'directory') assertNoRestrictedInside(host, from.path);
        const to = await confineEntry(sftp, host, destination);
        if (personality.isWithin(to.path, from.path)) throw new SshgateError('INVALID_INPUT', `destination ${to.path} lies inside the source ${from.path}`);
        if (to.stats !== null) {
          if (to.stats.isDirectory()) {
            throw new SshgateError('REMOTE_FAILURE', `destination ${to.path} is an existing directory; give the full new path (moving into a directory is not implied)`);
          }
          if (!options.overwrite) throw new SshgateError('REMOTE_FAILURE', `destination ${to.path} exists; pass overwrite: true to replace it`);
          if (type === 'directory') throw new SshgateError('REMOTE_FAILURE', `destination ${to.path} exists and a directory cannot replace a file`);
        }
        const base = { source: from.path, destination: to.path, type, files: 0, directories: 0, symlinks: 0, bytes: 0, skipped: [], verified: null };
        try {
          // posix-rename replaces atomically; the plain SFTP rename refuses an existing destination (no clobber).
          await (options.overwrite ? sftpOps.posixRename(sftp, from.path, to.path) : sftpOps.rename(sftp, from.path, to.path));
          return { ...base, method: 'rename' as const };
        } catch (err) {
          // Another file system (EXDEV) answers a generic failure: copy, verify, then remove the source.
          if (!(err instanceof SshgateError && err.code === 'REMOTE_FAILURE')) throw err;
          const still = await sftpOps.lstat(sftp, from.path).catch(() => null);
          if (still === null) throw err;
        }
        const copied = await copyOnce(sftp, host, from.path, to.path, { recursive: true, overwrite: options.overwrite, noFollow: true });
        const walked = await walkTree(sftp, host, from.path, from.stats, Number.MAX_SAFE_INTEGER, signal);
        await removeEntries(sftp, walked.entries, signal);
        return { ...copied, method: 'copy+remove' as const };
      });
    },
  };

  /** ssh_copy_path, also the fallback of a move across file systems. */
  async function copyOnce(
    sftp: SFTPWrapper,
    host: ResolvedHost,
    source: string,
    destination: string,
    options: { recursive: boolean; overwrite: boolean; noFollow?: boolean },
  ): Promise<CopyOutcome> {
    const personality = personalityOf(host);
    let from: string;
    let fromStats: Stats;
    if (options.noFollow === true) {
      const entry = await confineEntry(sftp, host, source);
      if (entry.stats === null) throw new SshgateError('REMOTE_NOT_FOUND', `${entry.path}: no such file or directory`);
      from = entry.path;
      fromStats = entry.stats;
    } else {
      // A symlink given as the source is followed (inside the roots), like cp.
      from = await confineExisting(sftp, host, source);
      fromStats = await sftpOps.lstat(sftp, from);
    }
    if (personality.isRoot(from)) throw new SshgateError('INVALID_INPUT', `source: ${from} is the root of the file system`);
    const type = entryType(fromStats.mode);
    const to = await confineEntry(sftp, host, destination);
    if (personality.isWithin(to.path, from)) throw new SshgateError('INVALID_INPUT', `destination ${to.path} lies inside the source ${from}`);
    const base = { source: from, destination: to.path, type, files: 0, directories: 0, symlinks: 0, bytes: 0, skipped: [] as { path: string; reason: string }[] };
    if (type === 'symlink') {
      if (to.stats !== null) throw new SshgateError('REMOTE_FAILURE', `destination ${to.path} exists`);
      await sftpOps.symlink(sftp, await sftpOps.readlink(sftp, from), to.path);
      return { ...base, symlinks: 1, method: 'stream', verified: null };
    }
    if (type === 'directory') {
      if (!options.recursive) throw new SshgateError('INVALID_INPUT', `${from} is a directory; pass recursive: true to copy the tree`);
      if (to.stats !== null) throw new SshgateError('REMOTE_FAILURE', `destination ${to.path} exists; copy a tree to a new path`);
      assertNoRestrictedInside(host, from);
      const walked = await walkTree(sftp, host, from, fromStats, maxRemoveEntries + 1, signal);
      if (!walked.complete) {
        throw new SshgateError('POLICY_DENIED', `${from} holds more than ${maxRemoveEntries} entries (limits.max_remove_entries); copy smaller subtrees`, {
          details: { rule: 'limits.max_remove_entries' },
        });
      }
      const stats = await copyTree(sftp, host, from, walked.entries, { path: to.path, dir: to.dir }, signal);
      return { ...base, ...stats, verified: 'size' };
    }
    if (type !== 'file') throw new SshgateError('INVALID_INPUT', `${from} is a ${type}; only files, directories and symlinks are copied`);
    if (to.stats !== null) {
      if (to.stats.isDirectory()) throw new SshgateError('REMOTE_FAILURE', `destination ${to.path} is a directory; give the full destination file path`);
      if (!options.overwrite) throw new SshgateError('REMOTE_FAILURE', `destination ${to.path} exists; pass overwrite: true to replace it`);
    }
    const target = to.stats?.isSymbolicLink() === true ? await confineForWrite(sftp, host, to.path) : { path: to.path, dir: to.dir, existing: to.stats };
    const handle = await sftpOps.open(sftp, from, 'r');
    let method: 'copy-data' | 'stream' = 'stream';
    try {
      const openStats = await sftpOps.fstat(sftp, handle, from);
      const write = await writeAtomicWith(
        sftp,
        host,
        target,
        async (out, tmp) => {
          const r = await copyContent(sftp, handle, from, openStats, out, tmp, signal);
          method = r.method;
          return { bytes: r.bytes, sha256: r.sha256 };
        },
        { signal, mode: fromStats.mode & 0o7777, times: { atime: fromStats.atime, mtime: fromStats.mtime } },
      );
      return { ...base, files: 1, bytes: write.bytes, method, verified: write.verified };
    } finally {
      await sftpOps.close(sftp, handle, from).catch(() => undefined);
    }
  }
}

/** Refuses a tree operation on a directory that holds a restricted path (checked lexically on the real path). */
function assertNoRestrictedInside(host: ResolvedHost, dir: string): void {
  const personality = personalityOf(host);
  for (const [i, restricted] of host.restrictedPaths.entries()) {
    const normalised = personality.check(restricted, {});
    if (normalised.allowed && personality.isWithin(normalised.path, dir)) {
      throw new SshgateError('PATH_DENIED', `${host.alias}: ${dir} holds the restricted path ${normalised.path} (hosts.${host.alias}.restricted_paths[${i}]); the tree may not be moved, copied or removed whole`, {
        details: { rule: `restricted_paths[${i}]` },
      });
    }
  }
}

/**
 * Decodes a file as UTF-8 text for editing, refusing binary content: a NUL byte, or bytes that are not valid
 * UTF-8 (writing the decoded text back would change them).
 * @throws SshgateError INVALID_INPUT.
 */
export function decodeText(data: Buffer, path: string): string {
  if (data.includes(0)) throw new SshgateError('INVALID_INPUT', `${path} looks binary (it contains NUL bytes); it cannot be edited as text`);
  try {
    return new TextDecoder('utf-8', { fatal: true, ignoreBOM: true }).decode(data);
  } catch {
    throw new SshgateError('INVALID_INPUT', `${path} is not valid UTF-8 text; it cannot be edited as text`);
  }
}

/** True when `data` is not text the diff tools can show: a NUL byte or invalid UTF-8. */
export function isBinary(data: Buffer): boolean {
  if (data.includes(0)) return true;
  try {
    new TextDecoder('utf-8', { fatal: true }).decode(data);
    return false;
  } catch {
    return true;
  }
}

export { isNotFound };
