// The SSH operations tools may use, bound to the pool and to one call's signal: tools never touch ssh2.
import { posix } from 'node:path';
import { SshgateError } from '../errors.js';
import type { ResolvedHost } from '../config/load.js';
import type { Tier } from '../policy/tiers.js';
import { templateOffered, templateParams, templateTier } from '../policy/templates.js';
import { execCommand, type ExecResult } from './exec.js';
import type { ConnectionPool } from './pool.js';
import type { SFTPWrapper as SFTPWrapperLike } from 'ssh2';
import type { Config } from '../config/schema.js';
import type { ServerState } from './state.js';
import { OutputSpool } from './spool.js';
import { createFileOpsFacade, type FileOpsFacade } from './file-ops.js';
import { createTransferFacade, type TransferFacade } from './transfer.js';
import { createJobsFacade, type JobsFacade } from './jobs.js';
import { createShellFacade, type ShellFacade } from './shell-session.js';
import { createSudoFacade, type SudoFacade } from './sudo.js';
import { fileKindOfMode, confineExisting, confineForWrite, lexicalPath, readText, sftpOps, withSftp, writeAtomic, type ReadOutcome, type WriteOutcome } from './sftp.js';

/** A configured host as the model may see it (no secrets, no key paths). */
export interface HostSummary {
  alias: string;
  hostname: string;
  port: number;
  user: string;
  tier: Tier;
  labels: string[];
  roots: string[];
  allow_execute: boolean;
  allow_sftp_read: boolean;
  allow_sftp_write: boolean;
  /** Command templates offered on this host (ssh_run_template), with their tier and parameters. */
  templates: { name: string; tier: Tier; description: string | null; params: string[] }[];
}

/** Read-only view of the configured hosts. */
export interface HostInventory {
  list(): HostSummary[];
  /**
   * The resolved host of an alias, for a tool that reaches a second host (`other_host`); null when the alias
   * is not configured. The caller must apply that host's policy itself (tier, toggles, paths).
   */
  resolve(alias: string): ResolvedHost | null;
}

/** Builds the inventory view of a set of resolved hosts and the templates they offer. */
export function createInventory(hosts: ReadonlyMap<string, ResolvedHost>, templates: Config['templates'] = {}): HostInventory {
  return {
    resolve: (alias) => hosts.get(alias) ?? null,
    list: () =>
      [...hosts.values()].map((h) => ({
        alias: h.alias,
        hostname: h.hostname,
        port: h.port,
        user: h.user,
        tier: h.tier,
        labels: [...h.labels],
        roots: [...h.roots],
        allow_execute: h.allowExecute,
        allow_sftp_read: h.allowSftpRead,
        allow_sftp_write: h.allowSftpWrite,
        templates: Object.entries(templates)
          .filter(([, t]) => templateOffered(t, h.alias, h.labels))
          .map(([name, t]) => ({ name, tier: templateTier(t), description: t.description ?? null, params: templateParams(t.command) })),
      })),
  };
}

/** One directory entry as returned to the model. */
export interface DirectoryEntry {
  name: string;
  type: 'file' | 'directory' | 'symlink' | 'fifo' | 'socket' | 'block' | 'char' | 'other';
  size: number;
  mode: string;
  permissions: string;
  uid: number;
  gid: number;
  mtime: string;
  link_target: string | null;
}

/** stat/lstat of a path. */
export interface FileInfo extends DirectoryEntry {
  path: string;
  /** For a symlink, the type of what it points to (null when dangling). */
  target_type: DirectoryEntry['type'] | null;
}

const fileType = fileKindOfMode;

/** `rwxr-x---` style rendering of permission bits, with setuid/setgid/sticky as `ls -l` shows them. */
export function permissionString(mode: number): string {
  const bits = ['r', 'w', 'x'];
  let out = '';
  for (let i = 8; i >= 0; i -= 1) out += mode & (1 << i) ? (bits[(8 - i) % 3] ?? '-') : '-';
  const chars = out.split('');
  const special = (index: number, flag: number, set: string, unset: string): void => {
    if (mode & flag) chars[index] = chars[index] === 'x' ? set : unset;
  };
  special(2, 0o4000, 's', 'S');
  special(5, 0o2000, 's', 'S');
  special(8, 0o1000, 't', 'T');
  return chars.join('');
}

function entryOf(name: string, attrs: { mode: number; size: number; uid: number; gid: number; mtime: number }, linkTarget: string | null): DirectoryEntry {
  return {
    name,
    type: fileType(attrs.mode),
    size: attrs.size,
    mode: (attrs.mode & 0o7777).toString(8).padStart(4, '0'),
    permissions: permissionString(attrs.mode),
    uid: attrs.uid,
    gid: attrs.gid,
    mtime: new Date(attrs.mtime * 1000).toISOString(),
    link_target: linkTarget,
  };
}

/** Result of a ping. */
export interface PingResult {
  reachable: true;
  latency_ms: number;
  fingerprint: string;
  key_type: string;
  banner: string;
}

/** The core SSH operations for tools; every method honours the call's signal. */
export interface BaseFacade {
  ping(host: ResolvedHost): Promise<PingResult>;
  exec(
    host: ResolvedHost,
    command: string,
    options: { cwd?: string; env?: Record<string, string>; stdin?: string; maxOutputBytes?: number; stallTimeoutMs?: number },
  ): Promise<ExecResult>;
  /** The spool of full outputs that went past the cap (ssh_read_output). */
  spool(): OutputSpool;
  listDirectory(host: ResolvedHost, path: string): Promise<{ path: string; entries: DirectoryEntry[] }>;
  fileInfo(host: ResolvedHost, path: string, follow: boolean): Promise<FileInfo>;
  readFile(
    host: ResolvedHost,
    path: string,
    options: { startLine?: number; lineCount?: number; offset?: number; maxBytes: number; encoding: 'utf8' | 'base64' },
  ): Promise<ReadOutcome>;
  writeFile(host: ResolvedHost, path: string, data: Buffer, options: { mode?: number; expectedSha256?: string }): Promise<WriteOutcome>;
}

/** What every facade group is built from, for one call. */
export interface FacadeDeps {
  pool: ConnectionPool;
  /** The call's signal (timeout and cancellation). */
  signal: AbortSignal;
  limits: Config['limits'];
  /** Local directories transfers may use (absolute, `~` expanded). */
  localPaths: readonly string[];
  /** Progress reporting of the call (a no-op without a progress token). */
  progress: (done: number, total?: number, message?: string) => void;
  /** Per-server singletons (shell sessions, spools). */
  state: ServerState;
  spool: Config['spool'];
  /** Adds a secret learned at call time (a sudo password from sudo_password_command) to the redactor. */
  addSecret?: (value: string) => void;
  /** Background job settings (config `jobs`: remote job directory and log cap). */
  jobs: Config['jobs'];
  /** Upload/download/host-to-host settings (config `transfers`: request size, requests in flight, tree cap). */
  transfers: Config['transfers'];
  /** Persistent shell settings (config `shells`: idle and total lifetime, sessions per host). */
  shells: Config['shells'];
}

/** Every SSH operation a tool may use: the base group plus one group per module. */
export type HostFacade = BaseFacade & FileOpsFacade & TransferFacade & JobsFacade & ShellFacade & SudoFacade;

/** Creates the facade for one call. */
export function createHostFacade(deps: FacadeDeps): HostFacade {
  return { ...createBaseFacade(deps), ...createFileOpsFacade(deps), ...createTransferFacade(deps), ...createJobsFacade(deps), ...createShellFacade(deps), ...createSudoFacade(deps) };
}

function createBaseFacade(deps: FacadeDeps): BaseFacade {
  const { pool, signal } = deps;
  // Reads change nothing, so a connection lost mid-read is retried on a new one (writes never are).
  const readSftp = <T>(host: ResolvedHost, fn: (sftp: SFTPWrapperLike) => Promise<T>): Promise<T> => withSftp(pool, host, signal, fn, { idempotent: true });
  const spool = (): OutputSpool =>
    deps.state.get(
      'spool',
      () => new OutputSpool({ maxOutputBytes: deps.spool.max_output_bytes, maxTotalBytes: deps.spool.max_total_bytes, maxAgeMs: deps.spool.max_age_ms }),
    );
  const limits = { maxOutputBytes: deps.limits.max_output_bytes, hashLimitBytes: deps.limits.max_write_bytes };
  return {
    async ping(host) {
      // Waiting for a connection honours the signal itself, reporting CONNECT_TIMEOUT with the last error.
      const info = await pool.info(host, signal);
      const started = performance.now();
      const result = await execCommand(pool, host, 'true', { maxOutputBytes: 4096, signal, exitGraceMs: 50, idempotent: true });
      const latency = performance.now() - started;
      if (result.exit_code !== 0) throw new SshgateError('REMOTE_FAILURE', `${host.alias}: the test command failed (exit ${result.exit_code ?? 'none'}): ${result.stderr.slice(0, 300)}`);
      return { reachable: true, latency_ms: Math.round(latency * 100) / 100, fingerprint: info.fingerprint, key_type: info.keyType, banner: info.banner };
    },

    exec(host, command, options) {
      let lastProgress = 0;
      return execCommand(pool, host, command, {
        ...(options.cwd === undefined ? {} : { cwd: options.cwd }),
        ...(options.env === undefined ? {} : { env: options.env }),
        ...(options.stdin === undefined ? {} : { stdin: options.stdin }),
        ...(options.stallTimeoutMs === undefined ? {} : { stallTimeoutMs: options.stallTimeoutMs }),
        maxOutputBytes: options.maxOutputBytes ?? limits.maxOutputBytes,
        signal,
        openSpool: () => spool().create(host.alias),
        // Long commands stream: the newest line goes out as a progress notification, at most 4 per second.
        onOutput: (bytes, lastLine) => {
          const now = Date.now();
          if (now - lastProgress < 250) return;
          lastProgress = now;
          deps.progress(bytes, undefined, lastLine.slice(0, 200));
        },
      });
    },

    spool,

    listDirectory(host, path) {
      return readSftp(host, async (sftp) => {
        const real = await confineExisting(sftp, host, path);
        const list = await sftpOps.readdir(sftp, real);
        const entries = await Promise.all(
          list.map(async (item) => {
            let target: string | null = null;
            if (item.attrs.isSymbolicLink()) target = await sftpOps.readlink(sftp, posix.join(real, item.filename)).catch(() => null);
            return entryOf(item.filename, item.attrs, target);
          }),
        );
        entries.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
        return { path: real, entries };
      });
    },

    fileInfo(host, path, follow) {
      return readSftp(host, async (sftp) => {
        const lexical = lexicalPath(host, path);
        // The path itself is checked lexically; following a symlink must not lead out of the roots.
        const lst = await sftpOps.lstat(sftp, lexical);
        let target: string | null = null;
        let targetType: DirectoryEntry['type'] | null = null;
        if (lst.isSymbolicLink()) {
          target = await sftpOps.readlink(sftp, lexical);
          try {
            const real = await confineExisting(sftp, host, lexical);
            targetType = fileType((await sftpOps.stat(sftp, real)).mode);
            if (follow) return { ...entryOf(posix.basename(real), await sftpOps.stat(sftp, real), target), path: real, target_type: targetType };
          } catch (err) {
            if (follow || !(err instanceof SshgateError && err.code === 'REMOTE_NOT_FOUND')) throw err;
          }
        }
        return { ...entryOf(posix.basename(lexical) || '/', lst, target), path: lexical, target_type: targetType };
      });
    },

    readFile(host, path, options) {
      return readSftp(host, async (sftp) => {
        const real = await confineExisting(sftp, host, path);
        return readText(sftp, real, { ...options, hashLimitBytes: limits.hashLimitBytes, signal });
      });
    },

    writeFile(host, path, data, options) {
      return withSftp(pool, host, signal, async (sftp) => {
        const target = await confineForWrite(sftp, host, path);
        if (options.expectedSha256 !== undefined) {
          const current =
            target.existing === null
              ? null
              : (await readText(sftp, target.path, { maxBytes: 1, hashLimitBytes: Number.MAX_SAFE_INTEGER, encoding: 'base64', signal })).sha256;
          if (current !== options.expectedSha256.toLowerCase()) {
            throw new SshgateError(
              'REMOTE_FAILURE',
              `${path} changed since it was read: expected sha256 ${options.expectedSha256}, found ${current ?? 'no file'}; read it again before writing`,
              { details: { current_sha256: current } },
            );
          }
        }
        return writeAtomic(sftp, host, target, data, { ...(options.mode === undefined ? {} : { mode: options.mode }), signal });
      });
    },
  };
}
