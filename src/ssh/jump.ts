// Reaches a host through a jump host: a direct-tcpip channel (ssh2 forwardOut) on the jump host's pooled
// connection becomes the socket of the next hop's own, separately verified SSH connection.
import { Duplex } from 'node:stream';
import type { Client, ClientChannel } from 'ssh2';
import { SshgateError, isSshgateError } from '../errors.js';
import type { ResolvedHost } from '../config/load.js';
import { ChannelOpenError, signalError } from './pool.js';

/**
 * Opens a tunnel from `client` (the connection to `hop`) to `target.hostname:target.port`; the jump host
 * resolves and connects to that address. The stream gets an error handler; closing it closes the channel.
 * @throws ChannelOpenError `dead` when `client` is unusable (nothing was opened: retrying on a fresh
 *   connection is safe); SshgateError CONNECT_FAILED when the jump host refused the tunnel (target unreachable
 *   from there, or forwarding prohibited), naming both hosts; the signal's error when `signal` aborts.
 */
export function openTunnel(client: Client, hop: ResolvedHost, target: ResolvedHost, signal: AbortSignal): Promise<Duplex> {
  return new Promise<Duplex>((resolve, reject) => {
    let settled = false;
    const onAbort = (): void => {
      if (settled) return;
      settled = true;
      reject(signalError(signal));
    };
    if (signal.aborted) {
      onAbort();
      return;
    }
    signal.addEventListener('abort', onAbort, { once: true });
    const done = (err: Error | null, stream?: Duplex): void => {
      signal.removeEventListener('abort', onAbort);
      if (settled) {
        // The call gave up while the channel was opening: close it so its slot is not leaked.
        stream?.destroy();
        return;
      }
      settled = true;
      if (err !== null || stream === undefined) reject(err ?? new ChannelOpenError('dead', 'no channel'));
      else resolve(stream);
    };
    try {
      // The originator address is informational for sshd (it logs it); loopback and port 0 say "sshgate, here".
      client.forwardOut('127.0.0.1', 0, target.hostname, target.port, (err, stream) => {
        if (err !== undefined) {
          done(classifyTunnelError(err, hop, target));
          return;
        }
        // Trap (DESIGN 11): an unhandled 'error' event on a channel kills the process.
        stream.on('error', () => undefined);
        done(null, tunnelSocket(stream));
      });
    } catch (err) {
      done(new ChannelOpenError('dead', (err as Error).message));
    }
  });
}

/**
 * Wraps the tunnel channel in a plain Duplex that the next hop's ssh2 client uses as its socket. ssh2 ends a
 * dead connection with `sock.destroy()` and waits for `'close'`; a channel only closes once the jump host
 * confirms, which a stalled jump host never does. The wrapper closes at once when destroyed (so keepalive on the
 * tunnelled connection really ends it and fails its calls with CONNECTION_LOST), closes the channel, and
 * closes in turn when the channel does (the jump host's connection died).
 */
function tunnelSocket(channel: ClientChannel): Duplex {
  const socket = new Duplex({
    read() {
      channel.resume();
    },
    write(chunk: Buffer, _encoding, callback) {
      channel.write(chunk, callback);
    },
    final(callback) {
      channel.end();
      callback();
    },
    destroy(err, callback) {
      channel.destroy();
      callback(err);
    },
  });
  socket.on('error', () => undefined);
  channel.on('data', (chunk: Buffer) => {
    if (!socket.push(chunk)) channel.pause();
  });
  channel.on('end', () => {
    socket.push(null);
  });
  channel.on('close', () => {
    socket.destroy();
  });
  return socket;
}

/** RFC 4254 section 5.1 SSH_OPEN_ADMINISTRATIVELY_PROHIBITED. */
const OPEN_ADMINISTRATIVELY_PROHIBITED = 1;

/**
 * A refusal by the jump host (CHANNEL_OPEN_FAILURE: ssh2 sets a numeric `reason`) is final; anything else (ssh2's
 * cleanup of a dead connection, "Not connected") means the connection was unusable and nothing was opened.
 */
function classifyTunnelError(err: Error, hop: ResolvedHost, target: ResolvedHost): Error {
  const reason = err.message.replace(/^\(SSH\) /u, '');
  const code = (err as Error & { reason?: unknown }).reason;
  if (typeof code === 'number') {
    const isProhibited = code === OPEN_ADMINISTRATIVELY_PROHIBITED;
    return new SshgateError(
      'CONNECT_FAILED',
      `${target.alias}: the jump host ${hop.alias} could not open a tunnel to ${target.hostname}:${target.port} (${reason})`,
      {
        cause: err,
        details: { hop: hop.alias, route: routeOf(target) },
        hint: isProhibited
          ? `The jump host refuses TCP forwarding for this account: its sshd needs AllowTcpForwarding yes (or local) and no PermitOpen rule excluding ${target.hostname}:${target.port}.`
          : `Check that ${target.hostname}:${target.port} is reachable from ${hop.alias} and that sshd listens there.`,
      },
    );
  }
  return new ChannelOpenError('dead', reason);
}

/** Aliases from the first hop to `host`. */
export function routeOf(host: ResolvedHost): string[] {
  const route: string[] = [];
  for (let h: ResolvedHost | null = host; h !== null; h = h.jumpHost ?? null) {
    route.unshift(h.alias);
    if (route.length > 32) break;
  }
  return route;
}

/**
 * The error of `target` whose connection failed at jump host `hop` (any hop before it): the message starts with
 * `<target>: via jump host <hop>:`, and `details.hop` names the hop that failed (the innermost one when the
 * failure came from further up the chain), `details.route` the whole route. An auth failure on the bastion thus
 * reads differently from one on the target, which carries `details.hop` = the target's alias.
 */
export function viaHopError(err: unknown, hop: ResolvedHost, target: ResolvedHost): SshgateError {
  const inner = isSshgateError(err) ? err : new SshgateError('CONNECT_FAILED', `${hop.alias}: ${(err as Error).message}`, { cause: err });
  const failedHop = typeof inner.details?.['hop'] === 'string' ? inner.details['hop'] : hop.alias;
  const hopMessage = typeof inner.details?.['hop_message'] === 'string' ? inner.details['hop_message'] : inner.message;
  const route = routeOf(target);
  const routeText = route.length > 2 ? ` (route ${route.join(' -> ')})` : '';
  return new SshgateError(inner.code, `${target.alias}: via jump host ${failedHop}${routeText}: ${hopMessage}`, {
    cause: inner,
    ...(inner.hint === undefined ? {} : { hint: inner.hint }),
    details: { ...inner.details, hop: failedHop, hop_message: hopMessage, route },
  });
}

/** Marks a failure of the final host of a jump route (`details.hop` = the host itself), message unchanged. */
export function atTargetError(err: SshgateError, target: ResolvedHost): SshgateError {
  if (typeof err.details?.['hop'] === 'string') return err;
  return new SshgateError(err.code, err.message, {
    cause: err.cause ?? err,
    ...(err.hint === undefined ? {} : { hint: err.hint }),
    details: { ...err.details, hop: target.alias, route: routeOf(target) },
  });
}
