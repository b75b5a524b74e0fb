// Keeps verified SSH connections per host alias and hands out channel slots so that OpenSSH's MaxSessions
// and MaxStartups limits never turn a burst of calls into failures.
import type { Client, SFTPWrapper } from 'ssh2';
import { SshgateError } from '../errors.js';
import type { ResolvedHost } from '../config/load.js';
import type { Logger } from '../log.js';
import { openConnection, type ConnectSettings, type ConnectionInfo, type KnownHostsStore } from './connect.js';
import { isTransientConnectError, mapConnectError } from './map-error.js';

/** Pool limits (config `pool`). */
export interface PoolSettings extends ConnectSettings {
  idleTimeoutMs: number;
  maxConnectionsPerHost: number;
  /** Kept below OpenSSH's MaxSessions (default 10). */
  maxChannelsPerConnection: number;
  maxHandshakesPerHost: number;
}

/** One pooled connection. `channels` counts the slots in use, the SFTP session included. */
export class PooledConnection {
  channels = 0;
  /** Lowered when the server refuses a channel (a host with a smaller MaxSessions). */
  channelLimit: number;
  alive = true;
  lastUsed = Date.now();
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

class HostPool {
  readonly conns: PooledConnection[] = [];
  handshakes = 0;
  readonly waiters: Waiter[] = [];
  lastError: SshgateError | null = null;

  constructor(
    readonly host: ResolvedHost,
    private readonly pool: ConnectionPool,
  ) {}

  acquire(signal: AbortSignal): Promise<Lease> {
    return new Promise<Lease>((resolve, reject) => {
      if (signal.aborted) {
        reject(this.abortReason(signal));
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
    let wanted = this.waiters.length - this.handshakes * settings.maxChannelsPerConnection;
    while (
      wanted > 0 &&
      this.conns.length + this.handshakes < settings.maxConnectionsPerHost &&
      this.handshakes < settings.maxHandshakesPerHost
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
    const controller = new AbortController();
    const timer = setTimeout(() => {
      controller.abort(new SshgateError('CONNECT_TIMEOUT', `${this.host.alias}: the SSH handshake did not complete in ${this.pool.settings.connectTimeoutMs} ms`));
    }, this.pool.settings.connectTimeoutMs);
    // Waiters abandoning the queue do not cancel the handshake: the next call reuses the connection.
    void this.connectWithRetry(controller.signal)
      .then(
        ({ client, info }) => {
          const conn = new PooledConnection(client, info, this.pool.settings.maxChannelsPerConnection, (c) => {
            this.remove(c);
          });
          this.conns.push(conn);
          this.lastError = null;
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
      )
      .finally(() => {
        clearTimeout(timer);
      });
  }

  /** Opens a connection, retrying transient handshake drops (OpenSSH MaxStartups) with jittered backoff. */
  private async connectWithRetry(signal: AbortSignal): Promise<{ client: Client; info: ConnectionInfo }> {
    const attempts = 4;
    for (let attempt = 1; ; attempt += 1) {
      try {
        return await openConnection(this.host, this.pool.knownHosts, this.pool.settings, signal);
      } catch (err) {
        const mapped = mapConnectError(err, this.host.alias);
        if (attempt >= attempts || !isTransientConnectError(mapped) || signal.aborted) throw mapped;
        const delay = 50 * 2 ** attempt * (0.5 + Math.random());
        await new Promise((r) => setTimeout(r, delay));
      }
    }
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
   * @throws whatever `fn` throws, or the connect errors of {@link openConnection}.
   */
  async withChannel<T>(host: ResolvedHost, signal: AbortSignal, fn: (lease: Lease) => Promise<T>): Promise<T> {
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

  /** Information about the connection to `host` (opening one if needed). */
  async info(host: ResolvedHost, signal: AbortSignal): Promise<ConnectionInfo> {
    const hp = this.hostPool(host);
    const lease = await hp.acquire(signal);
    try {
      return lease.conn.info;
    } finally {
      lease.release();
    }
  }

  /** Number of live connections per host alias (for tests, the bench and `ssh_check_host`). */
  stats(): Record<string, { connections: number; channels: number }> {
    const out: Record<string, { connections: number; channels: number }> = {};
    for (const [alias, hp] of this.hosts) {
      out[alias] = { connections: hp.conns.length, channels: hp.conns.reduce((n, c) => n + c.channels, 0) };
    }
    return out;
  }

  /** Closes every connection and rejects queued calls. */
  closeAll(): void {
    for (const hp of this.hosts.values()) hp.closeAll();
    this.hosts.clear();
  }
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
