// Keeps verified SSH connections per host alias (jump hosts included) and hands out channel slots so that
// OpenSSH's MaxSessions and MaxStartups limits never turn a burst of calls into failures; retries transient
// connect failures with jittered backoff and fails fast on a host that keeps failing (a circuit breaker).
import type { Duplex } from 'node:stream';
import type { Client, SFTPWrapper } from 'ssh2';
import { SshgateError, isSshgateError } from '../errors.js';
import type { ResolvedHost } from '../config/load.js';
import type { Logger } from '../log.js';
import { openConnection, type ConnectSettings, type ConnectionInfo, type KnownHostsStore } from './connect.js';
import { atTargetError, openTunnel, viaHopError } from './jump.js';
import { isTransientConnectError, mapConnectError } from './map-error.js';

/** Pool limits (config `pool`). */
export interface PoolSettings extends ConnectSettings {
  idleTimeoutMs: number;
  maxConnectionsPerHost: number;
  /** Kept below OpenSSH's MaxSessions (default 10). */
  maxChannelsPerConnection: number;
  maxHandshakesPerHost: number;
  /** Connection attempts per handshake for transient failures (MaxStartups drops, refused, timeout). Default 4. */
  connectAttempts?: number;
  /** First backoff delay between attempts; doubles each time, with +-50 % jitter. Default 100 ms. */
  backoffBaseMs?: number;
  /** Longest backoff delay. Default 2 s. */
  backoffMaxMs?: number;
  /** Consecutive failed handshakes after which a host fails fast (the circuit opens). Default 3. */
  breakerThreshold?: number;
  /** How long an open circuit fails fast before one new attempt; doubles while attempts keep failing. Default 30 s. */
  breakerCooldownMs?: number;
  /** Longest cooldown. Default 5 min. */
  breakerMaxCooldownMs?: number;
}

/** Options of {@link ConnectionPool.withChannel}. */
export interface ChannelOptions {
  /**
   * The work is safe to repeat (a read-tier call that changes nothing): if the connection is lost during the
   * call, `fn` runs again on a new connection after a jittered backoff, at most 3 times in all and only while
   * the call's signal allows (connect failures are already retried by the pool for every call, as nothing ran).
   * Default false: a call that may have changed something is never repeated.
   */
  idempotent?: boolean;
}

const DEFAULTS = {
  connectAttempts: 4,
  backoffBaseMs: 100,
  backoffMaxMs: 2_000,
  breakerThreshold: 3,
  breakerCooldownMs: 30_000,
  breakerMaxCooldownMs: 300_000,
} as const;
/** Runs of an idempotent call in all. */
const IDEMPOTENT_RUNS = 3;

/** Delay before attempt `attempt + 1`: exponential, capped, with +-50 % jitter so a burst does not retry in step. */
function backoffDelay(settings: PoolSettings, attempt: number): number {
  const base = settings.backoffBaseMs ?? DEFAULTS.backoffBaseMs;
  const max = settings.backoffMaxMs ?? DEFAULTS.backoffMaxMs;
  return Math.min(max, base * 2 ** (attempt - 1)) * (0.5 + Math.random());
}

/** Resolves after `ms`, or rejects with the signal's error as soon as it aborts. */
function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return abortable(new Promise<void>((resolve) => setTimeout(resolve, ms).unref()), signal);
}

/**
 * Connect failures worth another attempt: a handshake dropped or reset (MaxStartups), a refused or unreachable
 * port (a restarting sshd), a handshake timeout. Never authentication, host keys or configuration, and never a
 * failure at a jump host (its own pool entry already retried it).
 */
function isRetryableConnectError(err: SshgateError): boolean {
  if (typeof err.details?.['hop'] === 'string' && err.details['hop_message'] !== undefined) return false;
  if (err.code === 'CONNECT_TIMEOUT') return true;
  return err.code === 'CONNECT_FAILED' && (isTransientConnectError(err) || /ECONNREFUSED|EHOSTUNREACH|ENETUNREACH|EAI_AGAIN|closed during the handshake/u.test(err.message));
}

/** One pooled connection. `channels` counts the slots in use, the SFTP session included. */
export class PooledConnection {
  channels = 0;
  /** Lowered when the server refuses a channel (a host with a smaller MaxSessions). */
  channelLimit: number;
  alive = true;
  lastUsed = Date.now();
  /** Whether the account's login shell is bash (learned from the first command's marker), null until known. */
  loginShellIsBash: boolean | null = null;
  private sftpSession: Promise<SFTPWrapper> | null = null;
  private idleTimer: NodeJS.Timeout | null = null;

  constructor(
    readonly client: Client,
    readonly info: ConnectionInfo,
    channelLimit: number,
    private readonly onDead: (conn: PooledConnection) => void,
  ) {
    this.channelLimit = channelLimit;
    const dead = (): void => {
      if (!this.alive) return;
      this.alive = false;
      this.clearIdle();
      this.onDead(this);
    };
    // Trap (DESIGN 11): an unhandled 'error' event would kill the process.
    client.on('error', dead);
    client.on('close', dead);
    client.on('end', dead);
  }

  /**
   * The connection's SFTP session, opened once and kept (it holds one channel slot while open).
   * @throws SshgateError CONNECTION_LOST when the subsystem cannot be opened.
   */
  sftp(): Promise<SFTPWrapper> {
    if (this.sftpSession === null) {
      this.channels += 1;
      const session = new Promise<SFTPWrapper>((resolve, reject) => {
        this.client.sftp((err, sftp) => {
          if (err !== undefined) {
            reject(new SshgateError('CONNECTION_LOST', `cannot open the SFTP subsystem: ${err.message}`, { cause: err }));
            return;
          }
          sftp.on('error', () => undefined);
          sftp.on('close', () => {
            if (this.sftpSession === session) {
              this.sftpSession = null;
              this.channels -= 1;
            }
          });
          resolve(sftp);
        });
      });
      this.sftpSession = session;
      session.catch(() => {
        if (this.sftpSession === session) {
          this.sftpSession = null;
          this.channels -= 1;
        }
      });
    }
    return this.sftpSession;
  }

  /** True when a new channel may be opened here. */
  hasRoom(): boolean {
    return this.alive && this.channels < this.channelLimit;
  }

  armIdle(ms: number, close: () => void): void {
    this.clearIdle();
    if (ms <= 0) return;
    this.idleTimer = setTimeout(close, ms);
    this.idleTimer.unref();
  }

  clearIdle(): void {
    if (this.idleTimer !== null) clearTimeout(this.idleTimer);
    this.idleTimer = null;
  }

  close(): void {
    this.alive = false;
    this.clearIdle();
    this.client.end();
  }
}

/** A channel slot on a live connection; `release` must be called exactly once (extra calls are ignored). */
export interface Lease {
  conn: PooledConnection;
  /** True when the connection was opened for this lease (it was not reused). */
  fresh: boolean;
  release(): void;
}

interface Waiter {
  resolve: (lease: Lease) => void;
  reject: (err: SshgateError) => void;
  signal: AbortSignal;
  onAbort: () => void;
}

/** Circuit breaker state of one host: consecutive failed handshakes and, once open, until when it fails fast. */
interface Breaker {
  failures: number;
  /** Epoch ms until which new connections are not attempted; 0 when closed. */
  openUntil: number;
  cooldownMs: number;
  lastError: SshgateError | null;
}

class HostPool {
  readonly conns: PooledConnection[] = [];
  handshakes = 0;
  readonly waiters: Waiter[] = [];
  lastError: SshgateError | null = null;
  readonly breaker: Breaker;

  constructor(
    readonly host: ResolvedHost,
    private readonly pool: ConnectionPool,
  ) {
    this.breaker = { failures: 0, openUntil: 0, cooldownMs: pool.settings.breakerCooldownMs ?? DEFAULTS.breakerCooldownMs, lastError: null };
  }

  /** The fail-fast error while the circuit is open and no live connection could serve the call; else null. */
  private circuitError(): SshgateError | null {
    const now = Date.now();
    if (this.breaker.openUntil <= now || this.conns.some((c) => c.alive)) return null;
    const last = this.breaker.lastError;
    const retryAt = new Date(this.breaker.openUntil);
    const seconds = Math.ceil((this.breaker.openUntil - now) / 1000);
    return new SshgateError(
      last?.code === 'CONNECT_TIMEOUT' ? 'CONNECT_TIMEOUT' : 'CONNECT_FAILED',
      `${this.host.alias}: not trying to connect until ${retryAt.toISOString()} (in ${seconds} s): the last ${this.breaker.failures} connection attempts failed` +
        (last === null ? '' : ` (last error: ${last.message})`),
      {
        hint: `sshgate stops trying a host that keeps failing so that calls to other hosts are not slowed; it tries ${this.host.alias} again after ${retryAt.toISOString()}.`,
        details: { circuit: 'open', retry_at: retryAt.toISOString(), retry_in_ms: this.breaker.openUntil - now, consecutive_failures: this.breaker.failures },
      },
    );
  }

  acquire(signal: AbortSignal): Promise<Lease> {
    return new Promise<Lease>((resolve, reject) => {
      if (signal.aborted) {
        reject(this.abortReason(signal));
        return;
      }
      const open = this.circuitError();
      if (open !== null) {
        reject(open);
        return;
      }
      const waiter: Waiter = {
        resolve,
        reject,
        signal,
        onAbort: () => {
          const i = this.waiters.indexOf(waiter);
          if (i >= 0) this.waiters.splice(i, 1);
          reject(this.abortReason(signal));
        },
      };
      signal.addEventListener('abort', waiter.onAbort, { once: true });
      this.waiters.push(waiter);
      this.dispatch();
    });
  }

  private abortReason(signal: AbortSignal): SshgateError {
    const reason: unknown = signal.reason;
    if (reason instanceof SshgateError && reason.code === 'CANCELLED') return reason;
    const last = this.lastError === null ? '' : ` (last attempt: ${this.lastError.message})`;
    return new SshgateError('CONNECT_TIMEOUT', `${this.host.alias}: no connection became available before the call's timeout${last}`);
  }

  /** Hands free slots to waiters in order, and opens connections while waiters remain and limits allow. */
  dispatch(): void {
    const settings = this.pool.settings;
    while (this.waiters.length > 0) {
      const conn = this.conns.find((c) => c.hasRoom());
      if (conn === undefined) break;
      const waiter = this.waiters.shift();
      if (waiter === undefined) break;
      waiter.signal.removeEventListener('abort', waiter.onAbort);
      waiter.resolve(this.lease(conn, false));
    }
    if (this.breaker.openUntil > Date.now()) return;
    // Half-open (a tripped circuit whose cooldown is over): a single attempt tests the host.
    const maxHandshakes = this.breaker.openUntil === 0 ? settings.maxHandshakesPerHost : 1;
    let wanted = this.waiters.length - this.handshakes * settings.maxChannelsPerConnection;
    while (
      wanted > 0 &&
      this.conns.length + this.handshakes < settings.maxConnectionsPerHost &&
      this.handshakes < maxHandshakes
    ) {
      wanted -= settings.maxChannelsPerConnection;
      this.openOne();
    }
  }

  private lease(conn: PooledConnection, fresh: boolean): Lease {
    conn.channels += 1;
    conn.lastUsed = Date.now();
    conn.clearIdle();
    let released = false;
    return {
      conn,
      fresh,
      release: () => {
        if (released) return;
        released = true;
        conn.channels -= 1;
        conn.lastUsed = Date.now();
        if (conn.alive && conn.channels === 0) {
          conn.armIdle(this.pool.settings.idleTimeoutMs, () => {
            this.remove(conn);
            conn.close();
          });
        }
        this.dispatch();
      },
    };
  }

  private openOne(): void {
    this.handshakes += 1;
    // Waiters abandoning the queue do not cancel a handshake under way: the next call reuses the connection.
    void this.connectWithRetry()
      .then(
        ({ client, info }) => {
          const conn = new PooledConnection(client, info, this.pool.settings.maxChannelsPerConnection, (c) => {
            this.remove(c);
          });
          this.conns.push(conn);
          this.lastError = null;
          this.breaker.failures = 0;
          this.breaker.openUntil = 0;
          this.breaker.cooldownMs = this.pool.settings.breakerCooldownMs ?? DEFAULTS.breakerCooldownMs;
          this.handshakes -= 1;
          this.dispatch();
          if (conn.channels === 0) {
            conn.armIdle(this.pool.settings.idleTimeoutMs, () => {
              this.remove(conn);
              conn.close();
            });
          }
        },
        (err: unknown) => {
          this.handshakes -= 1;
          const mapped = mapConnectError(err, this.host.alias);
          this.lastError = mapped;
          this.recordFailure(mapped);
          this.pool.log.debug({ host: this.host.alias, code: mapped.code }, 'connect failed');
          // With no live connection to wait for, every waiter gets the error now.
          if (this.conns.length === 0 && this.handshakes === 0) {
            for (const waiter of this.waiters.splice(0)) {
              waiter.signal.removeEventListener('abort', waiter.onAbort);
              waiter.reject(mapped);
            }
          } else {
            this.dispatch();
          }
        },
      );
  }

  /**
   * Counts a failed handshake toward the circuit breaker. Only failures that say the host is unreachable count
   * (refused, reset, timeout), not authentication or host key refusals, nor a failure at a jump host (that
   * host's own breaker counts it).
   */
  private recordFailure(err: SshgateError): void {
    if (!isRetryableConnectError(err)) return;
    const settings = this.pool.settings;
    this.breaker.failures += 1;
    this.breaker.lastError = err;
    if (this.breaker.failures < (settings.breakerThreshold ?? DEFAULTS.breakerThreshold)) return;
    const wasOpen = this.breaker.openUntil !== 0;
    if (wasOpen) this.breaker.cooldownMs = Math.min(this.breaker.cooldownMs * 2, settings.breakerMaxCooldownMs ?? DEFAULTS.breakerMaxCooldownMs);
    this.breaker.openUntil = Date.now() + this.breaker.cooldownMs;
    this.pool.log.warn(
      { host: this.host.alias, failures: this.breaker.failures, retry_at: new Date(this.breaker.openUntil).toISOString() },
      'host keeps failing: failing fast until the cooldown ends',
    );
  }

  /**
   * Opens a connection, retrying transient failures (MaxStartups drops, a refused port, a handshake timeout) with
   * exponential backoff and jitter, but only while some call still waits for it: retries never outlive the calls'
   * timeouts. Each attempt has its own handshake timeout (the host's ConnectTimeout, else pool.connect_timeout_ms).
   */
  private async connectWithRetry(): Promise<{ client: Client; info: ConnectionInfo }> {
    const attempts = this.pool.settings.connectAttempts ?? DEFAULTS.connectAttempts;
    const timeoutMs = this.host.connectTimeoutMs ?? this.pool.settings.connectTimeoutMs;
    for (let attempt = 1; ; attempt += 1) {
      const controller = new AbortController();
      const timer = setTimeout(() => {
        controller.abort(new SshgateError('CONNECT_TIMEOUT', `${this.host.alias}: the SSH handshake did not complete in ${timeoutMs} ms`));
      }, timeoutMs);
      try {
        return await this.connectOnce(controller.signal);
      } catch (err) {
        const mapped = mapConnectError(err, this.host.alias);
        if (attempt >= attempts || !isRetryableConnectError(mapped) || this.waiters.length === 0) throw mapped;
        this.lastError = mapped;
        this.pool.log.debug({ host: this.host.alias, code: mapped.code, attempt }, 'connect failed, retrying');
        await new Promise((resolve) => setTimeout(resolve, backoffDelay(this.pool.settings, attempt)));
        if (this.waiters.length === 0) throw mapped;
      } finally {
        clearTimeout(timer);
      }
    }
  }

  /** One connection attempt: directly, or through a tunnel on the jump host's own pooled connection. */
  private async connectOnce(signal: AbortSignal): Promise<{ client: Client; info: ConnectionInfo }> {
    const jumpHost = this.host.jumpHost ?? null;
    if (jumpHost === null) {
      if (this.host.jump !== null) {
        throw new SshgateError('CONFIG_INVALID', `${this.host.alias}: its jump host ${this.host.jump} was not resolved (hosts must come from loadConfig)`);
      }
      return openConnection(this.host, this.pool.knownHosts, this.pool.settings, signal);
    }
    const { stream, release } = await this.pool.tunnel(jumpHost, this.host, signal);
    let conn: { client: Client; info: ConnectionInfo };
    try {
      conn = await openConnection(this.host, this.pool.knownHosts, this.pool.settings, signal, process.env, { sock: stream, jumpAlias: jumpHost.alias });
    } catch (err) {
      stream.destroy();
      release();
      throw atTargetError(mapConnectError(err, this.host.alias), this.host);
    }
    // The tunnel holds a channel slot on the jump host until this connection ends.
    stream.once('close', release);
    conn.client.once('close', release);
    return conn;
  }

  remove(conn: PooledConnection): void {
    const i = this.conns.indexOf(conn);
    if (i >= 0) this.conns.splice(i, 1);
    this.dispatch();
  }

  /** Called when the server refused a channel on `conn`: remember the lower limit it showed. */
  learnLimit(conn: PooledConnection): void {
    conn.channelLimit = Math.max(1, conn.channels - 1);
  }

  closeAll(): void {
    for (const conn of this.conns.splice(0)) conn.close();
    for (const waiter of this.waiters.splice(0)) {
      waiter.signal.removeEventListener('abort', waiter.onAbort);
      waiter.reject(new SshgateError('CONNECTION_LOST', `${this.host.alias}: sshgate is shutting down`));
    }
  }
}

/**
 * Connections keyed by host alias: opened lazily, verified against known_hosts, kept alive, closed when
 * idle. A call takes a channel slot with {@link ConnectionPool.withChannel}; when every connection is at
 * `maxChannelsPerConnection`, more connections are opened (at most `maxHandshakesPerHost` at a time, up
 * to `maxConnectionsPerHost`), and beyond that calls queue until a slot frees or their signal aborts.
 * A host with a jump host is reached through a tunnel that holds one channel slot on the jump host's own
 * pooled connection (shared by every host behind it) for as long as the tunnelled connection lives.
 * Transient connect failures are retried with backoff while a call waits; after `breakerThreshold` failed
 * handshakes in a row a host fails fast (its circuit opens) for a cooldown, without slowing other hosts.
 */
export class ConnectionPool {
  private readonly hosts = new Map<string, HostPool>();

  constructor(
    readonly knownHosts: KnownHostsStore,
    readonly settings: PoolSettings,
    readonly log: Logger,
  ) {}

  private hostPool(host: ResolvedHost): HostPool {
    let hp = this.hosts.get(host.alias);
    if (hp === undefined) {
      hp = new HostPool(host, this);
      this.hosts.set(host.alias, hp);
    }
    return hp;
  }

  /**
   * Runs `fn` with a channel slot on a live connection to `host` and releases the slot afterwards.
   * If `fn` fails with `CHANNEL_OPEN_FAILED` (the server refused a channel: a smaller MaxSessions), the
   * slot limit of that connection is lowered and `fn` is retried; if the connection turns out dead
   * before `fn` could start anything (a reused connection to a restarted sshd), it is replaced once.
   * With `options.idempotent`, a lost connection or a failed connect is retried as well (see {@link ChannelOptions}).
   * @throws whatever `fn` throws, or the connect errors of {@link openConnection} (prefixed `via jump host ...`
   *   when a jump host failed).
   */
  async withChannel<T>(host: ResolvedHost, signal: AbortSignal, fn: (lease: Lease) => Promise<T>, options: ChannelOptions = {}): Promise<T> {
    if (options.idempotent !== true) return this.runOnce(host, signal, fn);
    for (let run = 1; ; run += 1) {
      try {
        return await this.runOnce(host, signal, fn);
      } catch (err) {
        if (run >= IDEMPOTENT_RUNS || signal.aborted || !isRepeatable(err)) throw err;
        this.log.debug({ host: host.alias, code: (err as SshgateError).code, run }, 'retrying an idempotent call');
        await sleep(backoffDelay(this.settings, run), signal).catch(() => {
          throw err;
        });
      }
    }
  }

  private async runOnce<T>(host: ResolvedHost, signal: AbortSignal, fn: (lease: Lease) => Promise<T>): Promise<T> {
    const hp = this.hostPool(host);
    let replaced = false;
    for (let refusals = 0; ; ) {
      const lease = await hp.acquire(signal);
      try {
        return await fn(lease);
      } catch (err) {
        if (err instanceof ChannelOpenError) {
          if (err.kind === 'refused' && refusals < 20) {
            refusals += 1;
            hp.learnLimit(lease.conn);
            continue;
          }
          if (err.kind === 'dead' && !replaced && !lease.fresh) {
            replaced = true;
            lease.conn.alive = false;
            hp.remove(lease.conn);
            lease.conn.close();
            continue;
          }
          throw new SshgateError('CONNECTION_LOST', `${host.alias}: cannot open a channel (${err.message})`, { cause: err });
        }
        throw err;
      } finally {
        lease.release();
      }
    }
  }

  /**
   * A tunnel to `target` through `jumpHost`: a channel slot on the jump host's pooled connection (opened, and
   * itself tunnelled, as needed), replaced once if that connection turned out dead. `release` frees the slot.
   * @throws the jump host's errors as {@link viaHopError} (`<target>: via jump host <hop>: ...`, details.hop).
   */
  async tunnel(jumpHost: ResolvedHost, target: ResolvedHost, signal: AbortSignal): Promise<{ stream: Duplex; release: () => void }> {
    const hp = this.hostPool(jumpHost);
    let replaced = false;
    for (;;) {
      let lease: Lease;
      try {
        lease = await hp.acquire(signal);
      } catch (err) {
        throw viaHopError(err, jumpHost, target);
      }
      try {
        const stream = await openTunnel(lease.conn.client, jumpHost, target, signal);
        return {
          stream,
          release: () => {
            lease.release();
          },
        };
      } catch (err) {
        lease.release();
        if (err instanceof ChannelOpenError && !replaced && !lease.fresh) {
          replaced = true;
          lease.conn.alive = false;
          hp.remove(lease.conn);
          lease.conn.close();
          continue;
        }
        if (err instanceof ChannelOpenError) throw viaHopError(new SshgateError('CONNECTION_LOST', `${jumpHost.alias}: ${err.message}`), jumpHost, target);
        if (isSshgateError(err) && typeof err.details?.['hop'] === 'string') throw err;
        throw viaHopError(err, jumpHost, target);
      }
    }
  }

  /** Information about the connection to `host` (opening one if needed); transient connect failures are retried. */
  async info(host: ResolvedHost, signal: AbortSignal): Promise<ConnectionInfo> {
    return this.withChannel(host, signal, (lease) => Promise.resolve(lease.conn.info), { idempotent: true });
  }

  /** Number of live connections per host alias (for tests, the bench and `ssh_check_host`). */
  stats(): Record<string, { connections: number; channels: number }> {
    const out: Record<string, { connections: number; channels: number }> = {};
    for (const [alias, hp] of this.hosts) {
      out[alias] = { connections: hp.conns.length, channels: hp.conns.reduce((n, c) => n + c.channels, 0) };
    }
    return out;
  }

  /**
   * The circuit breaker of a host alias: `closed` (normal), `open` (failing fast until `retry_at`) or
   * `half-open` (the cooldown is over; the next call makes one attempt). Null for a host never used.
   */
  circuit(alias: string): { state: 'closed' | 'open' | 'half-open'; consecutive_failures: number; retry_at: string | null } | null {
    const hp = this.hosts.get(alias);
    if (hp === undefined) return null;
    const { failures, openUntil } = hp.breaker;
    const state = openUntil === 0 ? 'closed' : openUntil > Date.now() ? 'open' : 'half-open';
    return { state, consecutive_failures: failures, retry_at: openUntil === 0 ? null : new Date(openUntil).toISOString() };
  }

  /** Closes every connection and rejects queued calls. */
  closeAll(): void {
    // Hosts behind jump hosts first, so their tunnels close before the connections carrying them.
    const pools = [...this.hosts.values()].sort((a, b) => depth(b.host) - depth(a.host));
    for (const hp of pools) hp.closeAll();
    this.hosts.clear();
  }
}

function depth(host: ResolvedHost): number {
  let n = 0;
  for (let h = host.jumpHost ?? null; h !== null && n < 32; h = h.jumpHost ?? null) n += 1;
  return n;
}

/**
 * Errors after which an idempotent call may run again: the connection was lost during the call. Connect failures
 * are not repeated here: the pool already retried them with backoff, and the circuit breaker counts them.
 */
function isRepeatable(err: unknown): boolean {
  return isSshgateError(err, 'CONNECTION_LOST');
}

/**
 * Settles with `promise`, or rejects with the signal's reason (an SshgateError from invokeTool, else CANCELLED)
 * as soon as `signal` aborts, so that no ssh2 callback that never comes can outlive the call's timeout.
 */
export function abortable<T>(promise: Promise<T>, signal: AbortSignal): Promise<T> {
  if (signal.aborted) {
    promise.catch(() => undefined);
    return Promise.reject(signalError(signal));
  }
  return new Promise<T>((resolve, reject) => {
    const onAbort = (): void => {
      reject(signalError(signal));
    };
    signal.addEventListener('abort', onAbort, { once: true });
    promise.then(
      (value) => {
        signal.removeEventListener('abort', onAbort);
        resolve(value);
      },
      (err: unknown) => {
        signal.removeEventListener('abort', onAbort);
        reject(err instanceof Error ? err : new Error(String(err)));
      },
    );
  });
}

/** The error an aborted signal stands for. */
export function signalError(signal: AbortSignal): SshgateError {
  const reason: unknown = signal.reason;
  return reason instanceof SshgateError ? reason : new SshgateError('CANCELLED', 'the call was cancelled');
}

/**
 * Thrown by channel openers: `refused` when the server answered CHANNEL_OPEN_FAILURE (MaxSessions), `dead`
 * when the connection was already unusable, so nothing ran and a retry is safe.
 */
export class ChannelOpenError extends Error {
  constructor(
    readonly kind: 'refused' | 'dead',
    message: string,
  ) {
    super(message);
    this.name = 'ChannelOpenError';
  }
}

/** Classifies an error from `client.exec` / `client.sftp` callbacks (nothing was started yet). */
export function classifyOpenError(err: Error): ChannelOpenError {
  if (/open failure|open failed|administratively prohibited|resource shortage/iu.test(err.message)) {
    return new ChannelOpenError('refused', err.message);
  }
  return new ChannelOpenError('dead', err.message);
}
