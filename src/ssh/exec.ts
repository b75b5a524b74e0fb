// Runs one command on a host and returns its exit status and capped output; a timeout or cancellation
// really stops the remote process group, and a dropped connection is never reported as a success.
import { randomBytes } from 'node:crypto';
import type { ClientChannel } from 'ssh2';
import { SshgateError } from '../errors.js';
import { shellQuote } from '../policy/shell-quote.js';
import type { ResolvedHost } from '../config/load.js';
import { abortable, classifyOpenError, signalError, type ConnectionPool, type Lease } from './pool.js';
import type { SpoolWriter } from './spool.js';

/** Options of {@link execCommand}. */
export interface ExecOptions {
  /** Working directory (absolute POSIX path); the command fails with exit 126 if it cannot be entered. */
  cwd?: string;
  /** Extra environment variables, set with `export` before the command (values are shell-quoted). */
  env?: Record<string, string>;
  /** Bytes written to the command's standard input, which is then closed. Absent: stdin is closed at once. */
  stdin?: string | Buffer;
  /** Bytes kept per stream (head and tail halves); the rest is counted, never buffered. */
  maxOutputBytes: number;
  /** Aborted on timeout or MCP cancellation; the reason decides `timed_out` vs `CANCELLED`. */
  signal: AbortSignal;
  /** How long to wait for the output streams to close after the exit status arrived. Default 250 ms. */
  exitGraceMs?: number;
  /** End the command when it prints nothing for this long (reported as a timeout). */
  stallTimeoutMs?: number;
  /** Opens a spool for the full output, called once when the output first goes past `maxOutputBytes`. */
  openSpool?: () => SpoolWriter;
  /** The command only reads (sshgate's own fixed probes): repeat it on a new connection if the link drops. */
  idempotent?: boolean;
  /** Called as output arrives (throttled by the caller): bytes so far and the last line seen. */
  onOutput?: (bytes: number, lastLine: string) => void;
}

/** The execa-shaped result of a command that ran (a non-zero exit is data, not an error). */
export interface ExecResult {
  exit_code: number | null;
  signal: string | null;
  stdout: string;
  stderr: string;
  timed_out: boolean;
  truncated: boolean;
  duration_ms: number;
  stdout_bytes: number;
  stderr_bytes: number;
  /** Id of the spooled full output (ssh_read_output) when it went past the cap; null otherwise. */
  output_id: string | null;
}


/**
 * Keeps the first and last halves of a byte stream up to `max` bytes and counts the rest.
 * Memory stays O(max) whatever flows through it.
 */
export class HeadTailBuffer {
  private readonly head: Buffer[] = [];
  private headBytes = 0;
  private tail: Buffer[] = [];
  private tailBytes = 0;
  total = 0;

  constructor(private readonly max: number) {}

  push(chunk: Buffer): void {
    this.total += chunk.length;
    const headCap = Math.floor(this.max / 2);
    if (this.headBytes < headCap) {
      const take = Math.min(headCap - this.headBytes, chunk.length);
      this.head.push(chunk.subarray(0, take));
      this.headBytes += take;
      chunk = chunk.subarray(take);
      if (chunk.length === 0) return;
    }
    const tailCap = this.max - headCap;
    if (chunk.length >= tailCap) {
      this.tail = [Buffer.from(chunk.subarray(chunk.length - tailCap))];
      this.tailBytes = tailCap;
      return;
    }
    this.tail.push(chunk);
    this.tailBytes += chunk.length;
    while (this.tailBytes > tailCap) {
      const first = this.tail[0];
      if (first === undefined) break;
      const excess = this.tailBytes - tailCap;
      if (first.length <= excess) {
        this.tail.shift();
        this.tailBytes -= first.length;
      } else {
        this.tail[0] = first.subarray(excess);
        this.tailBytes -= excess;
      }
    }
  }

  get truncated(): boolean {
    return this.total > this.headBytes + this.tailBytes;
  }

  /** Everything pushed so far, while nothing was dropped. */
  contents(): Buffer {
    return Buffer.concat([...this.head, ...this.tail]);
  }

  /** The kept text; when bytes were dropped, a marker between head and tail says how many. */
  text(): string {
    const head = Buffer.concat(this.head).toString('utf8');
    const tail = Buffer.concat(this.tail).toString('utf8');
    if (!this.truncated) return head + tail;
    const omitted = this.total - this.headBytes - this.tailBytes;
    return `${head}\n[... sshgate: ${omitted} bytes omitted; the first and last ${this.max / 2} bytes are shown ...]\n${tail}`;
  }
}

const PID_MARK = '\u001esshgate-pid:';

/**
 * Finds and removes the pid marker the wrapper prints first on stderr. Bytes before the marker (a noisy
 * login script) are kept as stderr.
 */
class StderrPidSniffer {
  pid: number | null = null;
  /** `$BASH_VERSION` of the login shell ('' when it is not bash), or null before the marker arrived. */
  bashVersion: string | null = null;
  private pending: Buffer | null = Buffer.alloc(0);

  constructor(private readonly sink: (chunk: Buffer) => void) {}

  push(chunk: Buffer): void {
    if (this.pending === null) {
      this.sink(chunk);
      return;
    }
    const data = Buffer.concat([this.pending, chunk]);
    const text = data.toString('latin1');
    // eslint-disable-next-line no-control-regex -- the marker is framed by ASCII record separators on purpose.
    const match = /\u001esshgate-pid:(\d+):([^\u001e]*)\u001e/u.exec(text);
    if (match !== null) {
      this.pid = Number(match[1]);
      this.bashVersion = match[2] ?? '';
      this.pending = null;
      const before = data.subarray(0, match.index);
      const after = data.subarray(match.index + match[0].length);
      if (before.length > 0) this.sink(before);
      if (after.length > 0) this.sink(after);
      return;
    }
    if (data.length > 4096 && !text.includes(PID_MARK)) {
      this.pending = null;
      this.sink(data);
      return;
    }
    this.pending = data;
  }

  flush(): void {
    if (this.pending !== null && this.pending.length > 0) this.sink(this.pending);
    this.pending = null;
  }
}

/**
 * Builds the remote command line for the login shell: first the marker with the session shell's pid (sshd makes
 * that shell a session and process-group leader with setsid(), so the pid is also the group to kill), then the
 * cwd and environment, then `exec bash -c '<command>'`.
 * Security: the command policy parses bash syntax, so the command must run under bash, not under whatever the
 * login shell is: dash, for one, reads `echo $'\''; rm -rf /; echo \'` as three commands where bash sees one.
 * `exec` keeps the pid (and so the process group). A host without bash fails with exit 127.
 */
export function buildRemoteCommand(command: string, options: Pick<ExecOptions, 'cwd' | 'env'>, loginShellIsBash = false): string {
  const parts = [`printf '\\036sshgate-pid:%s:%s\\036' "$$" "\${BASH_VERSION-}" >&2`];
  if (options.cwd !== undefined) parts.push(`cd -- ${shellQuote(options.cwd)} || exit 126`);
  for (const [name, value] of Object.entries(options.env ?? {})) {
    if (!/^[A-Za-z_][A-Za-z0-9_]*$/u.test(name)) throw new SshgateError('INVALID_INPUT', `env: ${JSON.stringify(name)} is not a valid variable name`);
    parts.push(`export ${name}=${shellQuote(value)}`);
  }
  // When the login shell is bash (learned from the marker on this connection), the command follows on its own
  // line and bash parses it exactly as it would under `bash -c`; otherwise bash is started for it.
  if (loginShellIsBash) return `${parts.join('; ')}\n${command}`;
  parts.push(`exec bash -c ${shellQuote(command)}`);
  return parts.join('; ');
}

/**
 * Opens an exec channel. `wire`, when given, runs synchronously inside ssh2's callback, before any event of the
 * channel can be emitted: ssh2 may read the open confirmation, the output, the exit status and the close in one
 * chunk, so listeners attached after an `await` would miss a fast command's `exit`.
 */
function openExec(conn: ExecConnection, command: string, wire?: (channel: ClientChannel) => void): Promise<ClientChannel> {
  return new Promise((resolve, reject) => {
    try {
      conn.client.exec(command, (err, channel) => {
        if (err !== undefined) {
          reject(classifyExecError(err, conn));
          return;
        }
        wire?.(channel);
        resolve(channel);
      });
    } catch (err) {
      // ssh2 throws synchronously when the connection is already gone.
      reject(classifyOpenError(err as Error));
    }
  });
}

/** What {@link openExec} needs of a pooled connection: the client, and whether the pool still counts it alive. */
export interface ExecConnection {
  client: Lease['conn']['client'];
  readonly alive: boolean;
}

/**
 * ssh2 reports two different failures through one callback: the channel could not be opened (nothing was sent;
 * {@link classifyOpenError}), or the channel opened and the `exec` request failed ("Unable to exec"). In the
 * second case the request reached the connection: if the connection has died meanwhile, sshd may already be
 * running the command (measured: a stalled link whose reply never came back left `sleep` running on the host),
 * so the call must end as CONNECTION_LOST with an unknown outcome and never be retried on a new connection.
 * When the connection is alive, the server refused the request (RFC 4254 section 6.5, SSH_MSG_CHANNEL_FAILURE).
 */
export function classifyExecError(err: Error, conn: ExecConnection): Error {
  if (!/^Unable to exec/u.test(err.message)) return classifyOpenError(err);
  if (!conn.alive) {
    return new SshgateError('CONNECTION_LOST', 'the connection was lost just after the command was sent: it may have started on the host, and its exit status is unknown', {
      cause: err,
    });
  }
  return new SshgateError('REMOTE_FAILURE', 'the server refused to run the command (its exec request failed)', {
    cause: err,
    hint: 'sshd may forbid commands for this account (a ForceCommand or a restricted shell); check its logs.',
  });
}

/**
 * Stops the remote process group `pgid`: SIGTERM, then SIGKILL after up to 2 s, over a new channel on
 * the same connection. Resolves true when the group is gone.
 */
async function killProcessGroup(lease: Lease, pgid: number): Promise<boolean> {
  const script =
    `kill -TERM -- -${pgid} 2>/dev/null; i=0; ` +
    `while kill -0 -- -${pgid} 2>/dev/null && [ $i -lt 20 ]; do sleep 0.1; i=$((i+1)); done; ` +
    `kill -KILL -- -${pgid} 2>/dev/null; sleep 0.05; if kill -0 -- -${pgid} 2>/dev/null; then echo alive; else echo gone; fi`;
  for (let attempt = 0; attempt < 5; attempt += 1) {
    try {
      const channel = await openExec(lease.conn, script);
      const out = await new Promise<string>((resolve) => {
        let text = '';
        const timer = setTimeout(() => {
          channel.close();
          resolve(text);
        }, 5000);
        channel.on('data', (d: Buffer) => (text += d.toString()));
        channel.stderr.on('data', () => undefined);
        channel.on('error', () => undefined);
        channel.on('close', () => {
          clearTimeout(timer);
          resolve(text);
        });
        channel.end();
      });
      return out.includes('gone');
    } catch (err) {
      if (err instanceof Error && 'kind' in err && (err as { kind: string }).kind === 'refused') {
        await new Promise((r) => setTimeout(r, 100));
        continue;
      }
      return false;
    }
  }
  return false;
}

/**
 * Runs `command` through the remote account's shell and waits for it.
 * - Non-zero exit: a normal result.
 * - `signal` aborted: the remote process group is stopped (TERM, then KILL), then the partial output is
 *   returned with `timed_out: true` when the reason is a timeout, or `CANCELLED` is thrown.
 * - Exit status arrived but a background child keeps stdout open: the result is returned after `exitGraceMs`.
 * @throws SshgateError CONNECTION_LOST when the connection drops before an exit status arrived (the
 *   command's outcome is unknown), CANCELLED, or the pool's connect errors.
 */
export async function execCommand(pool: ConnectionPool, host: ResolvedHost, command: string, options: ExecOptions): Promise<ExecResult> {
  // Validates the environment names before anything is sent.
  buildRemoteCommand(command, options);
  return pool.withChannel(
    host,
    options.signal,
    async (lease) => {
    const started = performance.now();
    const stdout = new HeadTailBuffer(options.maxOutputBytes);
    const stderr = new HeadTailBuffer(options.maxOutputBytes);
    // Events that arrive before the settle logic below is in place are recorded and replayed.
    let onExit: ((code: number | null, sig: string | null) => void) | null = null;
    let onClose: (() => void) | null = null;
    let pendingExit: [number | null, string | null] | null = null;
    let pendingClose = false;
    // The full output goes to a spool from the moment it first passes the cap: up to then both buffers still
    // hold every byte, which is written first.
    let spool: SpoolWriter | null = null;
    const stall = new AbortController();
    let stallTimer: NodeJS.Timeout | null = null;
    const armStall = (): void => {
      if (options.stallTimeoutMs === undefined) return;
      if (stallTimer !== null) clearTimeout(stallTimer);
      stallTimer = setTimeout(() => {
        stall.abort(new SshgateError('COMMAND_TIMEOUT', `the command printed nothing for ${options.stallTimeoutMs} ms (stall_timeout_ms)`));
      }, options.stallTimeoutMs);
    };
    const capture = (stream: 'stdout' | 'stderr', buffer: HeadTailBuffer, chunk: Buffer): void => {
      armStall();
      if (spool === null && options.openSpool !== undefined && buffer.total + chunk.length > options.maxOutputBytes) {
        spool = options.openSpool();
        spool.write('stdout', stdout.contents());
        spool.write('stderr', stderr.contents());
      }
      spool?.write(stream, chunk);
      buffer.push(chunk);
      if (options.onOutput !== undefined) {
        const text = chunk.subarray(Math.max(0, chunk.length - 512)).toString('utf8');
        const lines = text.split('\n').filter((l) => l.trim() !== '');
        options.onOutput(stdout.total + stderr.total, lines.at(-1) ?? '');
      }
    };
    const sniffer = new StderrPidSniffer((chunk) => {
      capture('stderr', stderr, chunk);
    });
    const wire = (ch: ClientChannel): void => {
      ch.on('data', (chunk: Buffer) => {
        capture('stdout', stdout, chunk);
      });
      ch.stderr.on('data', (chunk: Buffer) => {
        sniffer.push(chunk);
      });
      ch.on('error', () => undefined);
      ch.stderr.on('error', () => undefined);
      ch.on('exit', (code: number | null, sig?: string) => {
        if (onExit === null) pendingExit = [code, sig ?? null];
        else onExit(code, sig ?? null);
      });
      ch.on('close', () => {
        if (onClose === null) pendingClose = true;
        else onClose();
      });
    };
    const remote = buildRemoteCommand(command, options, lease.conn.loginShellIsBash === true);
    const opening = openExec(lease.conn, remote, wire);
    // A channel that opens after the call gave up is closed at once rather than leaked.
    opening.then(
      (ch) => {
        if (options.signal.aborted) ch.close();
      },
      () => undefined,
    );
    const signal = options.stallTimeoutMs === undefined ? options.signal : AbortSignal.any([options.signal, stall.signal]);
    const channel = await abortable(opening, signal);
    armStall();

    return await new Promise<ExecResult>((resolve, reject) => {
      let exitCode: number | null = null;
      let exitSignal: string | null = null;
      let sawExit = false;
      let finished = false;
      let graceTimer: NodeJS.Timeout | null = null;

      const result = (timedOut: boolean): ExecResult => {
        sniffer.flush();
        if (sniffer.bashVersion !== null) lease.conn.loginShellIsBash = sniffer.bashVersion !== '';
        if (stallTimer !== null) clearTimeout(stallTimer);
        const spooled = spool;
        spooled?.finish();
        return {
          exit_code: exitCode,
          signal: exitSignal,
          stdout: stdout.text(),
          stderr: stderr.text(),
          timed_out: timedOut,
          truncated: stdout.truncated || stderr.truncated,
          duration_ms: Math.round(performance.now() - started),
          stdout_bytes: stdout.total,
          stderr_bytes: stderr.total,
          output_id: spooled?.id ?? null,
        };
      };
      const finish = (fn: () => void): void => {
        if (finished) return;
        finished = true;
        signal.removeEventListener('abort', onAbort);
        if (graceTimer !== null) clearTimeout(graceTimer);
        fn();
      };

      // Once an abort starts, only the abort path settles: the exit status our own SIGTERM causes must not
      // turn a timed-out or cancelled call into a success.
      let aborting = false;
      const onAbort = (): void => {
        if (finished || sawExit || aborting) return;
        aborting = true;
        const reason: unknown = signal.reason;
        const pid = sniffer.pid;
        void (async () => {
          let stopped = false;
          if (pid !== null) stopped = await killProcessGroup(lease, pid);
          channel.close();
          finish(() => {
            const partial = result(true);
            if (reason instanceof SshgateError && reason.code === 'CANCELLED') {
              reject(
                new SshgateError('CANCELLED', `the call was cancelled; the remote command ${stopped ? 'was stopped' : 'may still be running (it could not be signalled)'}`, {
                  details: { ...partial },
                }),
              );
              return;
            }
            reject(
              new SshgateError(
                'COMMAND_TIMEOUT',
                `the command ran past its timeout and ${stopped ? 'was stopped on the host (SIGTERM, then SIGKILL)' : 'could not be confirmed stopped on the host'}; partial output follows`,
                { details: { ...partial, stopped } },
              ),
            );
          });
        })();
      };
      signal.addEventListener('abort', onAbort, { once: true });

      onExit = (code, sig) => {
        exitCode = code;
        exitSignal = sig;
        if (aborting) return;
        sawExit = true;
        // Trap (DESIGN 11): a background child holding stdout delays 'close'; finish at exit plus a grace.
        graceTimer = setTimeout(() => {
          channel.close();
          finish(() => {
            resolve(result(false));
          });
        }, options.exitGraceMs ?? 250);
      };
      onClose = () => {
        if (aborting) return;
        if (sawExit) {
          finish(() => {
            resolve(result(false));
          });
          return;
        }
        // Trap (DESIGN 11): sshd died mid-command; the channel closes with no exit status.
        finish(() => {
          reject(
            new SshgateError('CONNECTION_LOST', `${host.alias}: the connection was lost while the command ran; its exit status is unknown (it may or may not have completed)`, {
              details: { ...result(false) },
            }),
          );
        });
      };
      if (pendingExit !== null) onExit(...(pendingExit));
      if (pendingClose) onClose();

      if (options.stdin !== undefined) channel.end(options.stdin);
      else channel.end();
      if (signal.aborted) onAbort();
    });
  },
    { idempotent: options.idempotent === true },
  );
}

/**
 * Runs one of sshgate's own fixed commands (never model input) on a connection that is already leased (no second
 * pool slot, so it cannot deadlock a caller that holds one), writes `stdin` and ends it, and hands stdout to `sink`
 * chunk by chunk as ssh2 delivers them (`sink` may keep them). While a promise returned by `sink` is pending, the
 * channel is paused, so the SSH window holds the sender back (bounded memory). stderr is kept up to
 * `stderrBytes`. The channel is closed when `signal` aborts (the remote command then dies of SIGPIPE at its next
 * write) or when `sink` fails. No pid marker, no kill: not for model commands.
 * @throws ChannelOpenError when the channel cannot be opened; SshgateError CONNECTION_LOST when the connection
 *   drops before an exit status; the signal's error; what `sink` throws or rejects with.
 */
async function pipeCommand(
  conn: ExecConnection,
  command: string,
  stdin: Buffer | null,
  sink: (chunk: Buffer) => Promise<void> | undefined,
  stderrBytes: number,
  signal: AbortSignal,
): Promise<{ exit_code: number | null; stderr: string }> {
  const stderr = new HeadTailBuffer(stderrBytes);
  let exitCode: number | null = null;
  let sawExit = false;
  let failed: { error: unknown } | null = null;
  let done: (() => void) | null = null;
  let closed = false;
  const fail = (ch: ClientChannel, error: unknown): void => {
    failed = { error };
    ch.close();
  };
  const channel = await abortable(
    openExec(conn, command, (ch) => {
      ch.on('data', (chunk: Buffer) => {
        if (failed !== null) return;
        let pending: Promise<void> | undefined;
        try {
          pending = sink(chunk);
        } catch (err) {
          // A throwing sink must not escape an event handler (it would end the process): it fails the call.
          fail(ch, err);
          return;
        }
        if (pending === undefined) return;
        ch.pause();
        pending.then(
          () => ch.resume(),
          (err: unknown) => {
            fail(ch, err);
          },
        );
      });
      ch.stderr.on('data', (d: Buffer) => {
        stderr.push(d);
      });
      ch.on('error', () => undefined);
      ch.stderr.on('error', () => undefined);
      ch.on('exit', (code: number | null) => {
        exitCode = code;
        sawExit = true;
      });
      ch.on('close', () => {
        closed = true;
        done?.();
      });
    }),
    signal,
  );
  await new Promise<void>((resolve, reject) => {
    const onAbort = (): void => {
      channel.close();
      reject(signalError(signal));
    };
    done = () => {
      signal.removeEventListener('abort', onAbort);
      if (failed !== null) reject(failed.error instanceof Error ? failed.error : new Error('sshgate\'s output consumer failed', { cause: failed.error }));
      else if (sawExit) resolve();
      else reject(new SshgateError('CONNECTION_LOST', 'the connection was lost while sshgate\'s own command ran; its outcome is unknown'));
    };
    signal.addEventListener('abort', onAbort, { once: true });
    if (closed) done();
    if (stdin === null) channel.end();
    else channel.end(stdin);
  });
  return { exit_code: exitCode, stderr: stderr.text() };
}

/**
 * Runs a short, fixed script on a connection that is already leased (see {@link pipeCommand}), feeding `stdin` and
 * collecting at most `maxOutputBytes` per stream. For sshgate's own scripts, not for model commands.
 * @throws ChannelOpenError when the server refuses the channel; SshgateError CONNECTION_LOST when the connection
 *   drops before an exit status.
 */
export async function execOnConnection(
  conn: ExecConnection,
  command: string,
  stdin: Buffer,
  signal: AbortSignal,
  maxOutputBytes = 64 * 1024,
): Promise<{ exit_code: number | null; stdout: string; stderr: string }> {
  const stdout = new HeadTailBuffer(maxOutputBytes);
  const result = await pipeCommand(
    conn,
    command,
    stdin,
    (chunk) => {
      stdout.push(chunk);
      return undefined;
    },
    maxOutputBytes,
    signal,
  );
  return { exit_code: result.exit_code, stdout: stdout.text(), stderr: result.stderr };
}

/**
 * {@link pipeCommand} on a channel of the pool's (which retries a refused or dead channel before anything ran):
 * streams a fixed command's stdout to `sink`, keeping 4 KiB of stderr.
 * @throws as {@link pipeCommand}, and the pool's connect errors.
 */
export async function streamCommand(
  pool: ConnectionPool,
  host: ResolvedHost,
  command: string,
  sink: (chunk: Buffer) => Promise<void> | undefined,
  signal: AbortSignal,
): Promise<{ exit_code: number | null; stderr: string }> {
  return pool.withChannel(host, signal, (lease) => pipeCommand(lease.conn, command, null, sink, 4096, signal));
}

/** A random token, for temp file names and markers. */
export function randomToken(bytes = 8): string {
  return randomBytes(bytes).toString('hex');
}
