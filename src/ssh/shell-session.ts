// Persistent shell sessions that keep state between calls: POSIX shells framed by random markers (no PTY), and
// network-device CLIs driven through a PTY until their prompt. Each session holds one channel slot of the pool for
// its whole life, and every session of a server is closed when the server stops or the MCP client goes away.
import { randomBytes } from 'node:crypto';
import { StringDecoder } from 'node:string_decoder';
import type { ClientChannel, PseudoTtyOptions } from 'ssh2';
import { SshgateError } from '../errors.js';
import type { ResolvedHost } from '../config/load.js';
import type { Config } from '../config/schema.js';
import { shellQuote } from '../policy/shell-quote.js';
import { execCommand, HeadTailBuffer } from './exec.js';
import type { FacadeDeps } from './facade.js';
import { abortable, classifyOpenError, signalError, type ConnectionPool, type Lease } from './pool.js';

/** Default time a command may run in a session before it is interrupted. */
export const DEFAULT_SEND_TIMEOUT_MS = 60_000;
/**
 * Time a send may take beyond its own timeout: interrupting a command (SIGINT, SIGTERM, each followed by a wait)
 * and, when it does not stop, closing the session. Tools add it to the call's timeout.
 */
export const SHELL_INTERRUPT_GRACE_MS = 15_000;
/** A prompt-looking last line ends a read only after nothing else arrived for this long (see {@link CliSession}). */
const PROMPT_SETTLE_MS = 100;
/** How long a new session may take to become ready (the POSIX handshake, a device's first prompt). */
const OPEN_TIMEOUT_MS = 20_000;
/** Output that arrives between commands (background jobs, device log lines), kept for the next command. */
const STRAY_MAX_BYTES = 64 * 1024;
/** Closed sessions remembered for a better SESSION_NOT_FOUND message. */
const REMEMBERED_CLOSED = 256;
/** Longest end marker (it carries the working directory). */
const MAX_MARKER_BYTES = 8192;
/** A pager prompt: Cisco ` --More-- `, Juniper `---(more 45%)---`, Huawei `  ---- More ----`. */
const MORE_PROMPT = /^\s*<?-+\s*\(?more\b[^\n]*?-+>?\s*$/iu;

/** Where a session runs. */
export type ShellPlatform = 'posix' | 'cli';

/** A session as the model sees it in ssh_list_shells. */
export interface ShellInfo {
  session_id: string;
  host: string;
  platform: ShellPlatform;
  busy: boolean;
  opened_at: string;
  last_used_at: string;
  /** When the session closes unless it is used before. */
  idle_expires_at: string;
  /** When the session closes in any case (shells.max_lifetime_ms). */
  expires_at: string;
  commands_run: number;
  /** POSIX: the shell's working directory after the last command. */
  cwd: string | null;
  /** CLI: the last prompt the device showed (its mode: `router>`, `router#`, `router(config)#`). */
  prompt: string | null;
  /** POSIX: pid of the remote shell, which leads the process group of everything the session started. */
  remote_pid: number | null;
}

/** What opening a session returns. */
export interface ShellOpenResult extends ShellInfo {
  /** CLI: what the device printed before its first prompt (banner, message of the day); POSIX: empty. */
  output: string;
  note: string | null;
}

/** What one command in a session returns (a non-zero exit code is data). */
export interface ShellSendResult {
  session_id: string;
  /** stdout and stderr together, in the order the command wrote them (POSIX), or the device's answer (CLI). */
  output: string;
  /** POSIX: the command's exit status (128+N after signal N, 130 after an interrupt); CLI: always null. */
  exit_code: number | null;
  timed_out: boolean;
  truncated: boolean;
  output_bytes: number;
  duration_ms: number;
  /** False when the session ended during this command (`exit`, a command that could not be interrupted, lifetime). */
  session_open: boolean;
  cwd: string | null;
  prompt: string | null;
  note: string | null;
}

/** The shell operations tools may use (see facade.ts). */
export interface ShellFacade {
  /**
   * Opens a session on `host` (`platform: posix` or `cli`).
   * @throws SshgateError POLICY_DENIED at `shells.max_per_host`, INVALID_INPUT on a windows host, REMOTE_FAILURE when
   *   the shell or the device prompt does not come up, and the pool's connect errors.
   */
  openShell(host: ResolvedHost): Promise<ShellOpenResult>;
  /**
   * Runs one command in a session of `host`; commands of one session run one after the other.
   * @throws SshgateError SESSION_NOT_FOUND (unknown id, another host's id, closed), CANCELLED (the command was
   *   interrupted first), CONNECTION_LOST (the session ended with no exit status).
   */
  sendShell(host: ResolvedHost, sessionId: string, command: string, options: { timeoutMs: number; maxOutputBytes: number }): Promise<ShellSendResult>;
  /**
   * Closes a session and stops everything it started on the host.
   * @throws SshgateError SESSION_NOT_FOUND.
   */
  closeShell(host: ResolvedHost, sessionId: string): Promise<{ session_id: string; host: string; commands_run: number }>;
  /** The open sessions of this server, oldest first. */
  listShells(): ShellInfo[];
}

/** Creates the shell operations for one call; the sessions themselves live in `deps.state` (one manager per server). */
export function createShellFacade(deps: FacadeDeps): ShellFacade {
  const manager = (): ShellManager => deps.state.get('shells', () => new ShellManager(deps.shells, deps.pool));
  return {
    openShell: (host) => manager().open(host, deps.signal),
    sendShell: (host, sessionId, command, options) => manager().send(host, sessionId, command, options, deps.signal),
    closeShell: (host, sessionId) => manager().end(host, sessionId),
    listShells: () => manager().list(),
  };
}

// ---------------------------------------------------------------------------------------------------------------
// The manager: ids, per-host cap, lifetimes.

/**
 * Every shell session of one server. Ids are 128-bit random (`sh-` + 32 hex digits) and bound to the host they were
 * opened on: another host's id, a closed id, or an id from another sshgate instance are all SESSION_NOT_FOUND.
 * `close` (called by ServerState.closeAll at shutdown and when the MCP client goes away) ends every session.
 */
export class ShellManager {
  private readonly sessions = new Map<string, ShellSession>();
  private readonly closed = new Map<string, { host: string; reason: string }>();
  private readonly opening = new Map<string, number>();
  private isShutDown = false;

  constructor(
    private readonly settings: Config['shells'],
    private readonly pool: ConnectionPool,
  ) {}

  /** Opens a session; see {@link ShellFacade.openShell}. */
  async open(host: ResolvedHost, signal: AbortSignal): Promise<ShellOpenResult> {
    if (this.isShutDown) throw new SshgateError('CONNECTION_LOST', 'sshgate is shutting down');
    if (host.platform === 'windows') {
      throw new SshgateError('INVALID_INPUT', `host ${host.alias} is a windows host: persistent shells support posix hosts and cli devices only; use ssh_exec`);
    }
    const inUse = [...this.sessions.values()].filter((s) => s.host.alias === host.alias).length + (this.opening.get(host.alias) ?? 0);
    if (inUse >= this.settings.max_per_host) {
      const ids = [...this.sessions.values()].filter((s) => s.host.alias === host.alias).map((s) => s.id);
      throw new SshgateError(
        'POLICY_DENIED',
        `host ${host.alias} already has ${inUse} open shell session${inUse === 1 ? '' : 's'}, the most allowed (shells.max_per_host: ${this.settings.max_per_host})`,
        { hint: `Reuse one, or close one with ssh_close_shell${ids.length > 0 ? ` (open: ${ids.join(', ')})` : ''}.`, details: { rule: 'shells.max_per_host' } },
      );
    }
    this.opening.set(host.alias, (this.opening.get(host.alias) ?? 0) + 1);
    try {
      const id = `sh-${randomBytes(16).toString('hex')}`;
      const hooks: SessionHooks = {
        gone: (session, reason) => {
          this.forget(session, reason);
        },
        stuck: (session, reason) => this.closeSession(session, reason),
      };
      const session = host.platform === 'cli' ? new CliSession(id, host, this.pool, hooks) : new PosixSession(id, host, this.pool, hooks);
      const greeting = await session.start(signal);
      if (session.isGone()) throw new SshgateError('CONNECTION_LOST', `${host.alias}: the shell session ended while it was being opened (${session.goneReason ?? 'unknown reason'})`);
      if (this.isShuttingDown()) {
        await session.terminate();
        throw new SshgateError('CONNECTION_LOST', 'sshgate is shutting down');
      }
      this.sessions.set(id, session);
      session.lifeTimer = setTimeout(() => {
        void this.closeSession(session, `it reached its maximum lifetime of ${this.settings.max_lifetime_ms} ms (shells.max_lifetime_ms)`);
      }, this.settings.max_lifetime_ms);
      session.lifeTimer.unref();
      this.armIdle(session);
      return { ...this.info(session), output: greeting.output, note: greeting.note };
    } finally {
      const left = (this.opening.get(host.alias) ?? 1) - 1;
      if (left > 0) this.opening.set(host.alias, left);
      else this.opening.delete(host.alias);
    }
  }

  /** Runs a command; see {@link ShellFacade.sendShell}. */
  async send(host: ResolvedHost, id: string, command: string, options: { timeoutMs: number; maxOutputBytes: number }, signal: AbortSignal): Promise<ShellSendResult> {
    const session = this.find(host, id);
    return await session.exclusive(signal, async () => {
      if (session.isGone()) throw this.notFound(host, id);
      session.busy = true;
      session.clearIdle();
      try {
        return await session.run(command, options, signal);
      } finally {
        session.busy = false;
        session.commandsRun += 1;
        session.lastUsedAt = Date.now();
        if (!session.isGone()) this.armIdle(session);
      }
    });
  }

  /** Closes one session; see {@link ShellFacade.closeShell}. */
  async end(host: ResolvedHost, id: string): Promise<{ session_id: string; host: string; commands_run: number }> {
    const session = this.find(host, id);
    await this.closeSession(session, 'it was closed with ssh_close_shell');
    return { session_id: id, host: host.alias, commands_run: session.commandsRun };
  }

  /** The open sessions, oldest first. */
  list(): ShellInfo[] {
    return [...this.sessions.values()].sort((a, b) => a.openedAt - b.openedAt).map((s) => this.info(s));
  }

  /** Ends every session (server shutdown, MCP client gone); later opens are refused. Never throws. */
  async close(): Promise<void> {
    this.isShutDown = true;
    await Promise.all([...this.sessions.values()].map((s) => this.closeSession(s, 'sshgate shut down or the MCP client went away').catch(() => undefined)));
  }

  /** Re-read after an await: close() may have run meanwhile. */
  private isShuttingDown(): boolean {
    return this.isShutDown;
  }

  private find(host: ResolvedHost, id: string): ShellSession {
    const session = this.sessions.get(id);
    // Security: an id is bound to the host it was opened on; another host's id is reported like an unknown one.
    if (session === undefined || session.host.alias !== host.alias || session.isGone()) throw this.notFound(host, id);
    return session;
  }

  private notFound(host: ResolvedHost, id: string): SshgateError {
    const gone = this.closed.get(id);
    const why = gone !== undefined && gone.host === host.alias ? `: it was closed because ${gone.reason}` : '';
    return new SshgateError('SESSION_NOT_FOUND', `host ${host.alias} has no open shell session ${JSON.stringify(id)}${why}`, {
      hint: 'Open one with ssh_open_shell (ssh_list_shells lists the open ones); cd, exported variables and the device mode of a closed session are gone.',
    });
  }

  private info(s: ShellSession): ShellInfo {
    return {
      session_id: s.id,
      host: s.host.alias,
      platform: s.platform,
      busy: s.busy,
      opened_at: new Date(s.openedAt).toISOString(),
      last_used_at: new Date(s.lastUsedAt).toISOString(),
      idle_expires_at: new Date(s.lastUsedAt + this.settings.idle_timeout_ms).toISOString(),
      expires_at: new Date(s.openedAt + this.settings.max_lifetime_ms).toISOString(),
      commands_run: s.commandsRun,
      cwd: s.cwd,
      prompt: s.prompt,
      remote_pid: s.remotePid,
    };
  }

  private armIdle(session: ShellSession): void {
    session.clearIdle();
    session.idleTimer = setTimeout(() => {
      if (!session.busy) void this.closeSession(session, `it was idle for ${this.settings.idle_timeout_ms} ms (shells.idle_timeout_ms)`);
    }, this.settings.idle_timeout_ms);
    session.idleTimer.unref();
  }

  /** Forgets a session (its id then reports why it closed) and stops its timers. */
  private forget(session: ShellSession, reason: string): void {
    if (this.sessions.get(session.id) === session) this.sessions.delete(session.id);
    session.clearIdle();
    if (session.lifeTimer !== null) clearTimeout(session.lifeTimer);
    if (!this.closed.has(session.id)) {
      this.closed.set(session.id, { host: session.host.alias, reason });
      for (const old of this.closed.keys()) {
        if (this.closed.size <= REMEMBERED_CLOSED) break;
        this.closed.delete(old);
      }
    }
  }

  private closeSession(session: ShellSession, reason: string): Promise<void> {
    session.markGone(reason);
    this.forget(session, reason);
    return session.terminate();
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Channels that outlive a call.

type OpenHow = { kind: 'exec'; command: string } | { kind: 'pty'; window: PseudoTtyOptions };

function openChannel(lease: Lease, how: OpenHow, wire: (channel: ClientChannel) => void): Promise<ClientChannel> {
  return new Promise((resolve, reject) => {
    // Listeners are wired inside ssh2's callback: output can arrive in the same chunk as the open confirmation.
    const callback = (err: Error | undefined, channel: ClientChannel): void => {
      if (err !== undefined) {
        reject(classifyOpenError(err));
        return;
      }
      wire(channel);
      resolve(channel);
    };
    try {
      if (how.kind === 'exec') lease.conn.client.exec(how.command, callback);
      else lease.conn.client.shell(how.window, callback);
    } catch (err) {
      // ssh2 throws synchronously when the connection is already gone.
      reject(classifyOpenError(err as Error));
    }
  });
}

/**
 * Opens a channel that stays open after the call: the slot is taken through `pool.withChannel` (so a server's
 * MaxSessions refusal and a dead reused connection are handled as for any call) and held until the channel closes,
 * which also happens when the connection drops. A channel that opens after `signal` aborted is closed at once.
 * @throws the pool's connect errors, CONNECTION_LOST, or the signal's error.
 */
function holdChannel(pool: ConnectionPool, host: ResolvedHost, signal: AbortSignal, how: OpenHow, wire: (channel: ClientChannel) => void): Promise<ClientChannel> {
  return new Promise((resolve, reject) => {
    let isOpen = false;
    void pool
      .withChannel(host, signal, async (lease) => {
        let markClosed = (): void => undefined;
        const closed = new Promise<void>((r) => {
          markClosed = r;
        });
        const opening = openChannel(lease, how, (channel) => {
          channel.once('close', markClosed);
          wire(channel);
        });
        opening.then(
          (channel) => {
            if (signal.aborted) channel.close();
          },
          () => undefined,
        );
        const channel = await abortable(opening, signal);
        isOpen = true;
        resolve(channel);
        await closed;
      })
      .catch((err: unknown) => {
        if (!isOpen) reject(err instanceof Error ? err : new Error(String(err)));
      });
  });
}

// ---------------------------------------------------------------------------------------------------------------
// Sessions.

type WaitOutcome = 'done' | 'closed' | 'timeout' | 'aborted';

interface SessionHooks {
  /** The channel closed on its own (the shell exited, the device hung up, the connection dropped). */
  gone(session: ShellSession, reason: string): void;
  /** A command could not be interrupted: the session must be closed. */
  stuck(session: ShellSession, reason: string): Promise<void>;
}

/** What both kinds of session share: the held channel, waiting on its output, one command at a time, timers. */
abstract class ShellSession {
  abstract readonly platform: ShellPlatform;
  readonly openedAt = Date.now();
  lastUsedAt = Date.now();
  commandsRun = 0;
  busy = false;
  cwd: string | null = null;
  prompt: string | null = null;
  remotePid: number | null = null;
  idleTimer: NodeJS.Timeout | null = null;
  lifeTimer: NodeJS.Timeout | null = null;
  goneReason: string | null = null;
  protected channel: ClientChannel | null = null;
  protected isChannelClosed = false;
  protected exitStatus: { code: number | null; signal: string | null } | null = null;
  private readonly checks = new Set<() => void>();
  private queue: Promise<void> = Promise.resolve();

  constructor(
    readonly id: string,
    readonly host: ResolvedHost,
    protected readonly pool: ConnectionPool,
    protected readonly hooks: SessionHooks,
  ) {}

  /** True once the session was closed (by us or by the remote side). */
  isGone(): boolean {
    return this.goneReason !== null || this.isChannelClosed;
  }

  /** Starts the remote side; resolves once it accepts commands. */
  abstract start(signal: AbortSignal): Promise<{ output: string; note: string | null }>;
  /** Runs one command (the caller holds {@link exclusive}). */
  abstract run(command: string, options: { timeoutMs: number; maxOutputBytes: number }, signal: AbortSignal): Promise<ShellSendResult>;
  /** Stops the remote side and everything it started; resolves when the channel is closed. Never throws. */
  abstract terminate(): Promise<void>;

  markGone(reason: string): void {
    this.goneReason ??= reason;
  }

  clearIdle(): void {
    if (this.idleTimer !== null) clearTimeout(this.idleTimer);
    this.idleTimer = null;
  }

  /** Runs `fn` after every earlier call of this session finished (or gives up when `signal` aborts first). */
  async exclusive<T>(signal: AbortSignal, fn: () => Promise<T>): Promise<T> {
    const previous = this.queue;
    let release = (): void => undefined;
    const mine = new Promise<void>((r) => {
      release = r;
    });
    this.queue = previous.then(() => mine);
    try {
      await abortable(previous, signal);
      return await fn();
    } finally {
      release();
    }
  }

  protected wireCommon(channel: ClientChannel): void {
    channel.on('error', () => undefined);
    channel.stderr.on('error', () => undefined);
    channel.on('exit', (code: number | null, signalName?: string) => {
      this.exitStatus = { code, signal: signalName ?? null };
    });
    channel.on('close', () => {
      this.isChannelClosed = true;
      this.clearSettle();
      this.notify();
      this.hooks.gone(this, this.goneReason ?? this.endedReason());
    });
  }

  /** Why the remote side ended, for SESSION_NOT_FOUND and notes. */
  protected endedReason(): string {
    if (this.exitStatus === null) return 'the connection was lost or the remote side closed the session';
    return this.exitStatus.code !== null ? `the remote shell exited with status ${this.exitStatus.code}` : `the remote shell was killed by ${this.exitStatus.signal ?? 'a signal'}`;
  }

  /** Hook for sessions with timers of their own, cleared when the channel closes. */
  protected clearSettle(): void {
    // Nothing by default.
  }

  /** Re-evaluates every pending wait (after output, an exit status or a close). */
  protected notify(): void {
    for (const check of [...this.checks]) check();
  }

  /** Waits until `done()` holds, the channel closes, `ms` pass, or `signal` aborts, whichever comes first. */
  protected waitFor(done: () => boolean, ms: number, signal?: AbortSignal): Promise<WaitOutcome> {
    return new Promise((resolve) => {
      let settled = false;
      const finish = (outcome: WaitOutcome): void => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        this.checks.delete(check);
        signal?.removeEventListener('abort', onAbort);
        resolve(outcome);
      };
      const check = (): void => {
        if (done()) finish('done');
        else if (this.isChannelClosed) finish('closed');
      };
      const onAbort = (): void => {
        finish('aborted');
      };
      const timer = setTimeout(() => {
        finish('timeout');
      }, ms);
      this.checks.add(check);
      if (signal?.aborted === true) {
        finish('aborted');
        return;
      }
      signal?.addEventListener('abort', onAbort, { once: true });
      check();
    });
  }

  /** Waits for the channel to close, up to `ms`. */
  protected async waitClosed(ms: number): Promise<boolean> {
    return (await this.waitFor(() => false, ms)) === 'closed';
  }

  protected result(fields: Omit<ShellSendResult, 'session_id' | 'session_open' | 'cwd' | 'prompt'>): ShellSendResult {
    return { session_id: this.id, ...fields, session_open: !this.isGone(), cwd: this.cwd, prompt: this.prompt };
  }
}

// ---------------------------------------------------------------------------------------------------------------
// POSIX: bash without a PTY, each command framed by a random end marker that carries $? and $PWD.

/**
 * What the login shell runs: bash (the command policy parses bash, so commands must run under bash, whatever the
 * login shell is) reading commands from the channel's stdin, which stays open. `exec` twice keeps the pid sshd gave
 * the session, which is the session and process-group leader (sshd calls setsid), so SIGINT to that group reaches
 * the running command. `exec -a` names it `sshgate-shell` in `ps` on the host.
 */
const POSIX_LAUNCH = `exec bash --noprofile --norc -c 'exec -a sshgate-shell bash --noprofile --norc'`;

/**
 * SIGINT and SIGTERM make the shell `return` from the running command with 130 or 143 instead of killing the shell,
 * so an interrupted `sleep 9; echo after` stops as a whole and a loop of builtins stops too; the message `return`
 * prints when no command runs is discarded. Children get the default dispositions back (trapped signals are reset on
 * exec). The traps are set again before every command: after a trap `return`s out of the wait for a child, bash 5.2
 * leaves SIGINT on its wait handler, and a later loop of builtins would ignore SIGINT.
 */
const POSIX_TRAPS = `trap 'return 130 2>/dev/null' INT; trap 'return 143 2>/dev/null' TERM`;

/** Sent once when the session starts: the traps, then a ready marker with the shell's pid and working directory. */
function posixInit(tag: string): string {
  return `${POSIX_TRAPS}; printf '\\036R${tag}:%s:%s\\036\\n' "$$" "$PWD"\n`;
}

/**
 * One command, framed. The command reaches bash as one single-quoted word, so nothing in it can end the frame early:
 * `.` (source) runs it in the session's shell itself, so `cd`, `export`, `declare` and variables persist, and its
 * stdin is the here-string, already read to its end, so `cat` or `read` get end-of-file instead of eating the
 * frames that follow. `2>&1` keeps stdout and stderr in the order they were written. Then `$?` and `$PWD` go out in
 * a marker on stdout (after a newline of our own, removed again) and a marker on stderr, so both streams are known
 * to be complete. The marker is 96 random bits per command: output cannot forge it. The traps come first (see
 * {@link POSIX_TRAPS}).
 */
function posixFrame(command: string, marker: string): string {
  return `${POSIX_TRAPS}; . /dev/stdin <<< ${shellQuote(command)} 2>&1; printf '\\n\\036E${marker}:%d:%s\\036\\n' "$?" "$PWD"; printf '\\036E${marker}\\036' >&2\n`;
}

/**
 * Passes a byte stream on to `sink` until `pattern` (which begins with `prefix`) appears, holding back only what could
 * be the beginning of it. Bytes after the match are kept in `rest`.
 */
export class MarkerScanner {
  match: RegExpExecArray | null = null;
  rest: Buffer = Buffer.alloc(0);
  private pending: Buffer = Buffer.alloc(0);

  constructor(
    private readonly prefix: string,
    private readonly pattern: RegExp,
    private readonly sink: (chunk: Buffer) => void,
  ) {}

  get found(): boolean {
    return this.match !== null;
  }

  /** Passes on what was held back (the stream ended without the marker). */
  flush(): void {
    if (this.match === null && this.pending.length > 0) this.sink(this.pending);
    this.pending = Buffer.alloc(0);
  }

  push(chunk: Buffer): void {
    if (this.match !== null) {
      this.rest = Buffer.concat([this.rest, chunk]);
      return;
    }
    const data = this.pending.length === 0 ? chunk : Buffer.concat([this.pending, chunk]);
    // latin1 maps each byte to one character, so string offsets are byte offsets.
    const text = data.toString('latin1');
    const match = this.pattern.exec(text);
    if (match !== null) {
      this.match = match;
      if (match.index > 0) this.sink(data.subarray(0, match.index));
      this.rest = data.subarray(match.index + match[0].length);
      this.pending = Buffer.alloc(0);
      return;
    }
    let keep = text.indexOf(this.prefix);
    if (keep < 0 || text.length - keep > MAX_MARKER_BYTES) keep = partialPrefixStart(text, this.prefix);
    if (keep > 0) this.sink(data.subarray(0, keep));
    this.pending = data.subarray(keep);
  }
}

/** Where the longest suffix of `text` that is a beginning of `prefix` starts (`text.length` when none). */
function partialPrefixStart(text: string, prefix: string): number {
  for (let i = Math.max(0, text.length - prefix.length + 1); i < text.length; i += 1) {
    if (prefix.startsWith(text.slice(i))) return i;
  }
  return text.length;
}

function token(bytes: number): string {
  return randomBytes(bytes).toString('hex');
}

/** A bounded list of byte chunks. */
class StrayBytes {
  private chunks: Buffer[] = [];
  private bytes = 0;

  push(chunk: Buffer): void {
    if (chunk.length === 0 || this.bytes >= STRAY_MAX_BYTES) return;
    const kept = chunk.subarray(0, STRAY_MAX_BYTES - this.bytes);
    this.chunks.push(kept);
    this.bytes += kept.length;
  }

  drain(into: (chunk: Buffer) => void): void {
    for (const chunk of this.chunks) into(chunk);
    this.chunks = [];
    this.bytes = 0;
  }
}

class PosixSession extends ShellSession {
  readonly platform = 'posix';
  private stdoutSink: ((chunk: Buffer) => void) | null = null;
  private stderrSink: ((chunk: Buffer) => void) | null = null;
  private readonly strayOut = new StrayBytes();
  private readonly strayErr = new StrayBytes();

  async start(signal: AbortSignal): Promise<{ output: string; note: string | null }> {
    const tag = token(12);
    // Whatever the login scripts print before the handshake is dropped (stderr is kept for the error message); the
    // sinks are in place before the channel opens, as output may come with the open confirmation.
    const ready = new MarkerScanner(`\x1eR${tag}:`, new RegExp(`\\x1eR${tag}:(\\d+):([^\\x1e]*)\\x1e\\n`, 'u'), () => undefined);
    const early = new HeadTailBuffer(2048);
    this.stdoutSink = (chunk) => {
      ready.push(chunk);
    };
    this.stderrSink = (chunk) => {
      early.push(chunk);
    };
    const channel = await holdChannel(this.pool, this.host, signal, { kind: 'exec', command: POSIX_LAUNCH }, (ch) => {
      this.wire(ch);
    });
    this.channel = channel;
    channel.write(posixInit(tag));
    const outcome = await this.waitFor(() => ready.found, OPEN_TIMEOUT_MS, signal);
    this.stdoutSink = null;
    this.stderrSink = null;
    if (outcome !== 'done' || ready.match === null) {
      this.markGone('it failed to start');
      await this.terminate();
      if (outcome === 'aborted') throw signalError(signal);
      const stderr = early.text().trim();
      throw new SshgateError(
        'REMOTE_FAILURE',
        `${this.host.alias}: the remote shell ${outcome === 'closed' ? 'ended' : `did not answer within ${OPEN_TIMEOUT_MS} ms`} before it was ready (a posix session needs bash on the host)${stderr === '' ? '' : `: ${stderr.slice(0, 500)}`}`,
      );
    }
    this.remotePid = Number(ready.match[1]);
    this.cwd = Buffer.from(ready.match[2] ?? '', 'latin1').toString('utf8');
    this.strayOut.push(ready.rest);
    return { output: '', note: null };
  }

  private wire(channel: ClientChannel): void {
    this.wireCommon(channel);
    channel.on('data', (chunk: Buffer) => {
      if (this.stdoutSink !== null) this.stdoutSink(chunk);
      else this.strayOut.push(chunk);
      this.notify();
    });
    channel.stderr.on('data', (chunk: Buffer) => {
      if (this.stderrSink !== null) this.stderrSink(chunk);
      else this.strayErr.push(chunk);
      this.notify();
    });
  }

  async run(command: string, options: { timeoutMs: number; maxOutputBytes: number }, signal: AbortSignal): Promise<ShellSendResult> {
    const channel = this.channel;
    if (channel === null) throw new SshgateError('INTERNAL', 'a shell session ran a command before it started');
    const started = performance.now();
    const marker = token(12);
    const out = new HeadTailBuffer(options.maxOutputBytes);
    const err = new HeadTailBuffer(options.maxOutputBytes);
    const endOut = new MarkerScanner(`\n\x1eE${marker}:`, new RegExp(`\\n\\x1eE${marker}:(\\d+):([^\\x1e]*)\\x1e\\n`, 'u'), (chunk) => {
      out.push(chunk);
    });
    const endErr = new MarkerScanner(`\x1eE${marker}\x1e`, new RegExp(`\\x1eE${marker}\\x1e`, 'u'), (chunk) => {
      err.push(chunk);
    });
    // Output of background jobs that arrived since the last command is shown with this one, as a terminal would.
    this.strayOut.drain((chunk) => {
      endOut.push(chunk);
    });
    this.strayErr.drain((chunk) => {
      endErr.push(chunk);
    });
    this.stdoutSink = (chunk) => {
      endOut.push(chunk);
    };
    this.stderrSink = (chunk) => {
      endErr.push(chunk);
    };
    channel.write(posixFrame(command, marker));
    const done = (): boolean => endOut.found && endErr.found;
    let outcome: WaitOutcome | 'stuck' = await this.waitFor(done, options.timeoutMs, signal);
    const isTimeout = outcome === 'timeout';
    const isCancel = outcome === 'aborted';
    let note: string | null = null;
    if (isTimeout || isCancel) {
      const stopped = await this.interrupt(done);
      outcome = stopped;
      if (stopped === 'stuck') {
        note = 'the command did not stop on SIGINT or SIGTERM (a trapped signal?), so the session was closed and its processes were killed';
        await this.hooks.stuck(this, 'a command in it could not be interrupted');
      } else if (stopped === 'done') {
        note = `the command was interrupted (SIGINT${isTimeout ? ` after timeout_ms ${options.timeoutMs}` : ''}); the session is still usable`;
      }
    }
    this.stdoutSink = null;
    this.stderrSink = null;
    endOut.flush();
    endErr.flush();
    this.strayOut.push(endOut.rest);
    this.strayErr.push(endErr.rest);
    let exitCode: number | null = null;
    if (outcome === 'done' && endOut.match !== null) {
      exitCode = Number(endOut.match[1]);
      this.cwd = Buffer.from(endOut.match[2] ?? '', 'latin1').toString('utf8');
    } else if (outcome === 'closed') {
      exitCode = this.exitStatus?.code ?? null;
      note = `the session ended during this command: ${this.goneReason ?? this.endedReason()}`;
    }
    // Bytes the shell itself wrote to stderr (outside the command's 2>&1) follow the command's output.
    const text = err.total > 0 ? `${out.text()}${err.text()}` : out.text();
    const result = this.result({
      output: text,
      exit_code: exitCode,
      timed_out: isTimeout,
      truncated: out.truncated || err.truncated,
      output_bytes: out.total + err.total,
      duration_ms: Math.round(performance.now() - started),
      note,
    });
    if (isCancel) {
      throw new SshgateError('CANCELLED', `the call was cancelled; the command ${outcome === 'done' ? 'was interrupted and the session is still usable' : 'was stopped and the session closed'}`, {
        details: { ...result },
      });
    }
    if (outcome === 'closed' && this.exitStatus === null && this.goneReason === null) {
      throw new SshgateError('CONNECTION_LOST', `${this.host.alias}: the connection was lost while the command ran; its exit status is unknown and the session is gone`, {
        details: { ...result },
      });
    }
    return result;
  }

  /**
   * Interrupts the running command, escalating: 1. SIGINT to the session's process group through an SSH signal
   * request (OpenSSH runs killpg on the session leader; it refuses for root logins: "session signalling requires
   * privilege separation"); 2. the same with `kill` over a second channel; 3. SIGTERM both ways. Background jobs
   * ignore SIGINT (non-interactive bash starts them so), like Ctrl-C in a terminal; SIGTERM reaches them.
   * Returns 'stuck' when the frame never completed.
   */
  private async interrupt(done: () => boolean): Promise<'done' | 'closed' | 'stuck'> {
    const steps: [() => Promise<void>, number][] = [
      [
        () => {
          this.channel?.signal('INT');
          return Promise.resolve();
        },
        300,
      ],
      [() => this.killGroup('INT'), 1000],
      [
        () => {
          this.channel?.signal('TERM');
          return this.killGroup('TERM');
        },
        1500,
      ],
    ];
    for (const [act, ms] of steps) {
      await act();
      const outcome = await this.waitFor(done, ms);
      if (outcome === 'done' || outcome === 'closed') return outcome;
    }
    return 'stuck';
  }

  /** `kill -SIG -- -<pgid>` over a separate channel (at most 3 s); failures are ignored (the caller checks the effect). */
  private async killGroup(sig: 'INT' | 'TERM' | 'KILL'): Promise<void> {
    if (this.remotePid === null) return;
    await execCommand(this.pool, this.host, `kill -${sig} -- -${this.remotePid} 2>/dev/null; true`, { maxOutputBytes: 1024, signal: AbortSignal.timeout(3000) }).catch(
      () => undefined,
    );
  }

  async terminate(): Promise<void> {
    const channel = this.channel;
    if (channel === null || this.isChannelClosed) return;
    // Security: the whole process group goes, background jobs started in the session included, not just bash.
    // An idle shell reads the line at once, a busy one only after its command; the signal request acts at once
    // where the server honours it (not for root logins on OpenSSH), else `kill` runs over a second channel.
    channel.write('kill -KILL 0\n');
    channel.signal('KILL');
    if (await this.waitClosed(this.busy ? 200 : 1500)) return;
    await this.killGroup('KILL');
    channel.close();
    await this.waitClosed(1000);
  }
}

// ---------------------------------------------------------------------------------------------------------------
// CLI devices: a PTY, the echo stripped, output read until the prompt.

/**
 * A one-line terminal model for PTY output, so that what a device draws comes out as the text a person would read:
 * CR returns to the start of the line and later characters overwrite, BS and `ESC [ n D` move back, `ESC [ n C` and
 * `ESC [ n G` move forward or to a column, `ESC [ K` erases in the line, other escape sequences and control characters
 * (but tab) are dropped, LF ends the line. CRLF, CR CR LF
 * and LF all end a line alike. Lines that were drawn over lose their trailing blanks (a pager prompt erased with
 * spaces leaves none behind).
 */
export class TerminalLines {
  private line: string[] = [];
  private col = 0;
  private isRewritten = false;
  private held = '';
  private readonly decoder = new StringDecoder('utf8');

  constructor(private readonly onLine: (line: string) => void) {}

  /** The line being drawn (text after the last line end). */
  current(): string {
    return this.line.join('');
  }

  /** Forgets the line being drawn (a prompt that was answered, a pager prompt). */
  discardLine(): void {
    this.line = [];
    this.col = 0;
    this.isRewritten = false;
  }

  write(chunk: Buffer): void {
    const chars = Array.from(this.held + this.decoder.write(chunk));
    this.held = '';
    for (let i = 0; i < chars.length; i += 1) {
      const c = chars[i] as string;
      if (c === '\n') {
        const text = this.current();
        this.onLine(this.isRewritten ? text.trimEnd() : text);
        this.discardLine();
      } else if (c === '\r') {
        // A CR at the end of a chunk may be the first half of CRLF: decide with the next chunk.
        if (i + 1 === chars.length) this.held = '\r';
        else if (chars[i + 1] !== '\n') this.col = 0;
      } else if (c === '\b') {
        this.col = Math.max(0, this.col - 1);
      } else if (c === '\x1b') {
        const window = chars.slice(i, i + 64).join('');
        // eslint-disable-next-line no-control-regex -- terminal escape sequences.
        const seq = /^\x1b(?:\[([0-?]*)[ -/]*([@-~])|\][^\x07\x1b]*(?:\x07|\x1b\\)|[ -/]*[0-Z\\^-~])/u.exec(window);
        if (seq === null) {
          // eslint-disable-next-line no-control-regex -- terminal escape sequences.
          if (i + 64 >= chars.length && /^\x1b(?:\[[0-?]*[ -/]*|\][^\x07\x1b]*|[ -/]*)$/u.test(window)) {
            this.held = window;
            break;
          }
          continue;
        }
        this.control(seq[2], seq[1] ?? '');
        i += Array.from(seq[0]).length - 1;
      } else if (c === '\t' || !(c < ' ' || (c >= '\x7f' && c <= '\x9f'))) {
        if (this.col < this.line.length) {
          if (this.line[this.col] !== c) this.isRewritten = true;
          this.line[this.col] = c;
        } else {
          while (this.line.length < this.col) this.line.push(' ');
          this.line.push(c);
        }
        this.col += 1;
      }
    }
  }

  /** The CSI sequences that change the line: cursor back (D), forward (C), to a column (G), erase in line (K). */
  private control(final: string | undefined, param: string): void {
    const n = Math.max(1, Number.parseInt(param, 10) || 1);
    if (final === 'D') this.col = Math.max(0, this.col - n);
    else if (final === 'C') this.col += n;
    else if (final === 'G') this.col = n - 1;
    else if (final === 'K') {
      this.isRewritten = true;
      if (param === '' || param === '0') this.line.length = Math.min(this.line.length, this.col);
      else if (param === '1') for (let i = 0; i < Math.min(this.col + 1, this.line.length); i += 1) this.line[i] = ' ';
      else this.line = [];
    }
  }
}

class CliSession extends ShellSession {
  readonly platform = 'cli';
  private readonly promptPattern: RegExp;
  private readonly screen = new TerminalLines((line) => {
    this.onLine(line);
  });
  private collector: { out: HeadTailBuffer; echo: string | null } | null = null;
  private strayLines: string[] = [];
  private strayBytes = 0;
  private settleTimer: NodeJS.Timeout | null = null;
  private isPromptReady = false;

  constructor(id: string, host: ResolvedHost, pool: ConnectionPool, hooks: SessionHooks) {
    super(id, host, pool, hooks);
    // The prompt must be the whole last line, whatever anchors the configured regex has.
    this.promptPattern = new RegExp(`^(?:${host.promptRegex ?? '[\\w.-]+(?:\\([^)]*\\))?[>#] ?'})$`, 'u');
  }

  async start(signal: AbortSignal): Promise<{ output: string; note: string | null }> {
    // The banner may come with the open confirmation: the collector is in place before the channel opens.
    const greeting = new HeadTailBuffer(8192);
    this.collector = { out: greeting, echo: null };
    // A wide terminal keeps devices from wrapping long lines (and echoes) with their own line breaks.
    const channel = await holdChannel(this.pool, this.host, signal, { kind: 'pty', window: { term: 'vt100', rows: 24, cols: 511, height: 0, width: 0 } }, (ch) => {
      this.wire(ch);
    });
    this.channel = channel;
    let outcome = await this.waitFor(() => this.isPromptReady, 2000, signal);
    if (outcome === 'timeout') {
      // Some devices draw their prompt only after a key press; an empty line runs nothing.
      channel.write('\n');
      outcome = await this.waitFor(() => this.isPromptReady, OPEN_TIMEOUT_MS, signal);
    }
    this.collector = null;
    if (outcome !== 'done') {
      const last = this.screen.current();
      this.markGone('it failed to start');
      await this.terminate();
      if (outcome === 'aborted') throw signalError(signal);
      throw new SshgateError(
        'REMOTE_FAILURE',
        `${this.host.alias}: ${outcome === 'closed' ? 'the device closed the session' : `no prompt matching hosts.${this.host.alias}.prompt_regex came within ${OPEN_TIMEOUT_MS} ms`} (last line received: ${JSON.stringify(last.slice(-200))})`,
        { hint: `Check hosts.${this.host.alias}.prompt_regex (/${this.host.promptRegex ?? ''}/): it must match the whole prompt line.` },
      );
    }
    this.prompt = this.screen.current().trim();
    const pagerOff = this.host.pagerOff ?? 'terminal length 0';
    const pager = await this.run(pagerOff, { timeoutMs: 10_000, maxOutputBytes: 4096 }, signal);
    if (!pager.session_open) throw new SshgateError('REMOTE_FAILURE', `${this.host.alias}: the session ended while paging was turned off with ${JSON.stringify(pagerOff)}`);
    const answer = pager.output.trim();
    const note =
      pager.timed_out || /^\s*%/mu.test(answer)
        ? `turning paging off with ${JSON.stringify(pagerOff)} (hosts.${this.host.alias}.pager_off) did not work${answer === '' ? '' : `: ${answer.slice(0, 300)}`}; --More-- pages are answered with a space instead`
        : null;
    return { output: greeting.text(), note };
  }

  private wire(channel: ClientChannel): void {
    this.wireCommon(channel);
    const onData = (chunk: Buffer): void => {
      this.screen.write(chunk);
      this.clearSettle();
      const current = this.screen.current();
      if (MORE_PROMPT.test(current)) {
        // A pager the pager_off command did not stop: the space shows the next page.
        this.screen.discardLine();
        channel.write(' ');
      } else if (this.promptPattern.test(current)) {
        // Security of the framing: a prompt-looking line ends the read only if nothing follows it for a moment, so
        // a line in the output that looks like a prompt (followed by more output) does not cut the answer short.
        this.settleTimer = setTimeout(() => {
          this.settleTimer = null;
          this.isPromptReady = true;
          this.notify();
        }, PROMPT_SETTLE_MS);
      }
      this.notify();
    };
    channel.on('data', onData);
    channel.stderr.on('data', onData);
  }

  protected override clearSettle(): void {
    if (this.settleTimer !== null) clearTimeout(this.settleTimer);
    this.settleTimer = null;
    this.isPromptReady = false;
  }

  private onLine(line: string): void {
    const collector = this.collector;
    if (collector === null) {
      // Device messages between commands (a log line on the session) are shown with the next command.
      if (this.strayBytes < STRAY_MAX_BYTES) {
        this.strayLines.push(line);
        this.strayBytes += line.length + 1;
      }
      return;
    }
    if (collector.echo !== null) {
      const echo = collector.echo;
      collector.echo = null;
      // The device echoes the command (sometimes redrawn after the prompt): that line is not output.
      if (line.trimEnd().endsWith(echo)) return;
    }
    collector.out.push(Buffer.from(`${line}\n`, 'utf8'));
  }

  async run(command: string, options: { timeoutMs: number; maxOutputBytes: number }, signal: AbortSignal): Promise<ShellSendResult> {
    const channel = this.channel;
    if (channel === null) throw new SshgateError('INTERNAL', 'a shell session ran a command before it started');
    const started = performance.now();
    const out = new HeadTailBuffer(options.maxOutputBytes);
    for (const line of this.strayLines) out.push(Buffer.from(`${line}\n`, 'utf8'));
    this.strayLines = [];
    this.strayBytes = 0;
    this.collector = { out, echo: command.trim() };
    this.screen.discardLine();
    this.clearSettle();
    channel.write(`${command}\n`);
    let outcome = await this.waitFor(() => this.isPromptReady, options.timeoutMs, signal);
    const isTimeout = outcome === 'timeout';
    const isCancel = outcome === 'aborted';
    let note: string | null = null;
    if (isTimeout || isCancel) {
      // Ctrl-C only: a newline could confirm a question the device is asking ("Proceed with reload? [confirm]").
      channel.write('\x03');
      outcome = await this.waitFor(() => this.isPromptReady, 3000);
      if (outcome === 'timeout') {
        note = 'the device did not show its prompt again after Ctrl-C, so the session was closed';
        await this.hooks.stuck(this, 'a command in it did not return to the prompt');
      } else if (outcome === 'done') {
        note = `the command was interrupted with Ctrl-C${isTimeout ? ` after timeout_ms ${options.timeoutMs}` : ''}; the device showed its prompt again`;
      }
    }
    this.collector = null;
    if (outcome === 'done') {
      this.prompt = this.screen.current().trim();
    } else {
      const partial = this.screen.current();
      if (partial !== '') out.push(Buffer.from(partial, 'utf8'));
      if (outcome === 'closed') note = `the session ended during this command: ${this.goneReason ?? this.endedReason()}`;
    }
    const result = this.result({
      output: out.text(),
      exit_code: null,
      timed_out: isTimeout,
      truncated: out.truncated,
      output_bytes: out.total,
      duration_ms: Math.round(performance.now() - started),
      note,
    });
    if (isCancel) throw new SshgateError('CANCELLED', 'the call was cancelled; Ctrl-C was sent to the device', { details: { ...result } });
    return result;
  }

  async terminate(): Promise<void> {
    const channel = this.channel;
    this.clearSettle();
    if (channel === null || this.isChannelClosed) return;
    channel.close();
    await this.waitClosed(1000);
  }
}
