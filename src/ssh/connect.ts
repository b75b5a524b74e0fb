// Opens one verified, authenticated SSH connection: socket with Nagle off, known_hosts check before auth, keepalive.
import { connect as netConnect, type Socket } from 'node:net';
import { readFile, stat } from 'node:fs/promises';
import ssh2, { type AnyAuthMethod, type ParsedKey } from 'ssh2';
import { SshgateError } from '../errors.js';
import type { ResolvedHost } from '../config/load.js';
import {
  appendKnownHost,
  checkHostKey,
  describeMismatch,
  describeUnknownHost,
  fingerprintSha256,
  formatKnownHostsLine,
  hostKeyAlgorithmsFor,
  keyTypeOfBlob,
  knownKeyTypes,
  loadKnownHosts,
  type KnownHostsEntry,
} from './known-hosts.js';
import { mapConnectError } from './map-error.js';

// ssh2 is CommonJS: Node's ESM loader exposes its exports only through the default import.
const { Client, utils: sshUtils } = ssh2;
type Client = InstanceType<typeof Client>;

/** known_hosts policy: strict refuses unknown hosts; accept-new appends a first-seen key. */
export type KnownHostsMode = 'strict' | 'accept-new';

/**
 * The known_hosts file as sshgate sees it: parsed once and re-read when its mtime changes, so a key the
 * operator pins while sshgate runs is used on the next connection.
 */
export class KnownHostsStore {
  private entries: KnownHostsEntry[] = [];
  private mtimeMs = -1;

  constructor(
    readonly file: string,
    readonly mode: KnownHostsMode,
  ) {}

  /** Current entries, re-read if the file changed. */
  async current(): Promise<KnownHostsEntry[]> {
    let mtime: number;
    try {
      mtime = (await stat(this.file)).mtimeMs;
    } catch {
      mtime = 0;
    }
    if (mtime !== this.mtimeMs) {
      this.entries = await loadKnownHosts(this.file);
      this.mtimeMs = mtime;
    }
    return this.entries;
  }

  /** Appends a first-seen key (accept-new). */
  async add(host: string, port: number, blob: Buffer): Promise<void> {
    await appendKnownHost(this.file, formatKnownHostsLine(host, port, blob));
    this.mtimeMs = -1;
  }
}

/** Pool-level settings used for every connection. */
export interface ConnectSettings {
  keepaliveIntervalMs: number;
  keepaliveCountMax: number;
  connectTimeoutMs: number;
}

/** What we learned about the server while connecting. */
export interface ConnectionInfo {
  /** `SHA256:...` of the host key. */
  fingerprint: string;
  keyType: string;
  /** The server's identification string, e.g. `SSH-2.0-OpenSSH_9.2p1 Debian-2+deb12u6`. */
  banner: string;
}

/** An open connection and what was learned while opening it. */
export interface Connection {
  client: Client;
  info: ConnectionInfo;
}

const keyCache = new Map<string, { mtimeMs: number; key: ParsedKey }>();

async function loadPrivateKey(path: string, passphrase: string | undefined, alias: string): Promise<ParsedKey> {
  let mtimeMs: number;
  try {
    mtimeMs = (await stat(path)).mtimeMs;
  } catch (err) {
    throw new SshgateError('CONFIG_INVALID', `hosts.${alias}.identity_file: cannot read ${path} (${(err as NodeJS.ErrnoException).code ?? 'error'})`, { cause: err });
  }
  const cacheKey = `${path}\u0000${passphrase ?? ''}`;
  const cached = keyCache.get(cacheKey);
  if (cached !== undefined && cached.mtimeMs === mtimeMs) return cached.key;
  const data = await readFile(path);
  const parsed = sshUtils.parseKey(data, passphrase);
  if (parsed instanceof Error) {
    const encrypted = /encrypted|passphrase/iu.test(parsed.message);
    throw new SshgateError(
      'CONFIG_INVALID',
      encrypted
        ? `hosts.${alias}.identity_file: ${path} is encrypted and the passphrase is missing or wrong (set passphrase_env)`
        : `hosts.${alias}.identity_file: ${path} is not a private key sshgate can read (${parsed.message})`,
    );
  }
  const key = Array.isArray(parsed) ? (parsed[0] as ParsedKey | undefined) : parsed;
  if (key === undefined) throw new SshgateError('CONFIG_INVALID', `hosts.${alias}.identity_file: ${path} holds no key`);
  keyCache.set(cacheKey, { mtimeMs, key });
  return key;
}

/** Builds the ordered list of authentication methods of a host: keys, then agent, then password. */
async function authMethods(host: ResolvedHost, env: NodeJS.ProcessEnv): Promise<AnyAuthMethod[]> {
  const methods: AnyAuthMethod[] = [];
  const passphrase = host.passphraseEnv === null ? undefined : env[host.passphraseEnv];
  for (const file of host.identityFiles) {
    methods.push({ type: 'publickey', username: host.user, key: await loadPrivateKey(file, passphrase, host.alias) });
  }
  if (host.agent !== null) methods.push({ type: 'agent', username: host.user, agent: host.agent });
  const password = host.passwordEnv === null ? undefined : env[host.passwordEnv];
  if (password !== undefined) methods.push({ type: 'password', username: host.user, password });
  if (methods.length === 0) {
    throw new SshgateError('CONFIG_INVALID', `hosts.${host.alias}: no authentication method (set identity_file, agent or password_env)`);
  }
  return methods;
}

function openSocket(host: ResolvedHost, signal: AbortSignal): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const where = `${host.alias} (${host.hostname}:${host.port})`;
    const socket = netConnect({ host: host.hostname, port: host.port });
    const onAbort = (): void => {
      socket.destroy();
      reject(abortError(signal, where));
    };
    if (signal.aborted) {
      onAbort();
      return;
    }
    signal.addEventListener('abort', onAbort, { once: true });
    socket.once('connect', () => {
      signal.removeEventListener('abort', onAbort);
      socket.removeAllListeners('error');
      // Trap (DESIGN 11): ssh2 leaves Nagle's algorithm on, which costs ~45 ms per round trip.
      socket.setNoDelay(true);
      resolve(socket);
    });
    socket.once('error', (err) => {
      signal.removeEventListener('abort', onAbort);
      reject(mapConnectError(err, where));
    });
  });
}

function abortError(signal: AbortSignal, where: string): SshgateError {
  const reason: unknown = signal.reason;
  if (reason instanceof SshgateError) return reason;
  return new SshgateError('CONNECT_TIMEOUT', `${where}: connecting took longer than the call's timeout`);
}

/**
 * Opens a connection to `host`: TCP with `setNoDelay(true)`, the host key checked against known_hosts
 * before any authentication (ssh2 runs `hostVerifier` during key exchange), then key / agent / password
 * authentication, keepalive on.
 * @throws SshgateError HOST_KEY_UNKNOWN | HOST_KEY_MISMATCH | HOST_KEY_REVOKED (nothing was authenticated),
 *   AUTH_FAILED, CONNECT_FAILED, CONNECT_TIMEOUT (handshake or `signal` aborted), CONFIG_INVALID (key files).
 */
export async function openConnection(
  host: ResolvedHost,
  knownHosts: KnownHostsStore,
  settings: ConnectSettings,
  signal: AbortSignal,
  env: NodeJS.ProcessEnv = process.env,
): Promise<Connection> {
  const where = `${host.alias} (${host.hostname}:${host.port})`;
  const methods = await authMethods(host, env);
  const entries = await knownHosts.current();
  const socket = await openSocket(host, signal);
  const client = new Client();
  let verdictError: SshgateError | null = null;
  let info: Omit<ConnectionInfo, 'banner'> | null = null;
  let banner = '';
  // The server's identification line (RFC 4253 section 4.2) is read off the socket, not from ssh2's debug hook,
  // which would format a string for every packet.
  let head = '';
  const sniff = (chunk: Buffer): void => {
    head += chunk.toString('latin1');
    const match = /^(SSH-[^\r\n]*)\r?\n/mu.exec(head);
    if (match?.[1] !== undefined || head.length > 8192) {
      banner = match?.[1] ?? '';
      socket.removeListener('data', sniff);
    }
  };
  socket.on('data', sniff);

  return await new Promise<Connection>((resolve, reject) => {
    let settled = false;
    // Trap (DESIGN 11): a port that accepts and never speaks fires readyTimeout, then a second error: settle once.
    const settle = (err: SshgateError | null): void => {
      if (settled) return;
      settled = true;
      signal.removeEventListener('abort', onAbort);
      if (err === null && info !== null) {
        client.removeListener('error', onError);
        resolve({ client, info: { ...info, banner } });
        return;
      }
      client.removeListener('error', onError);
      client.on('error', () => undefined);
      client.end();
      socket.destroy();
      reject(err ?? new SshgateError('CONNECT_FAILED', `${where}: handshake ended without a host key`));
    };
    const onAbort = (): void => {
      settle(abortError(signal, where));
    };
    const onError = (err: Error): void => {
      settle(verdictError ?? mapConnectError(err, where));
    };
    signal.addEventListener('abort', onAbort, { once: true });
    client.on('error', onError);
    client.on('close', () => {
      settle(verdictError ?? new SshgateError('CONNECT_FAILED', `${where}: the connection was closed during the handshake`));
    });
    client.on('handshake', () => undefined);
    client.on('ready', () => {
      settle(null);
    });
    client.on('banner', () => undefined);

    const hostKeyAlgorithms = hostKeyAlgorithmsFor(knownKeyTypes(entries, host.hostname, host.port));
    client.connect({
      sock: socket,
      username: host.user,
      // Security: always verify; ssh2 accepts any key when no hostVerifier is set.
      hostVerifier: (blob: Buffer, verify: (valid: boolean) => void): void => {
        let keyType: string;
        try {
          keyType = keyTypeOfBlob(blob);
        } catch {
          verdictError = new SshgateError('HOST_KEY_MISMATCH', `${where}: the server sent a malformed host key; refusing to connect`);
          verify(false);
          return;
        }
        const fingerprint = fingerprintSha256(blob);
        const verdict = checkHostKey(entries, host.hostname, host.port, blob);
        const accept = (): void => {
          info = { fingerprint, keyType };
          verify(true);
        };
        switch (verdict.status) {
          case 'trusted':
            accept();
            return;
          case 'revoked':
            verdictError = new SshgateError(
              'HOST_KEY_REVOKED',
              `${where}: the host key ${fingerprint} is marked @revoked in ${knownHosts.file} (line ${verdict.line}); refusing to connect`,
            );
            verify(false);
            return;
          case 'mismatch':
          case 'other-types':
            verdictError = new SshgateError('HOST_KEY_MISMATCH', describeMismatch(host.hostname, host.port, blob, knownHosts.file, verdict.lines), {
              details: { fingerprint, key_type: keyType, known_hosts_lines: verdict.lines },
            });
            verify(false);
            return;
          case 'unknown':
            if (knownHosts.mode === 'accept-new') {
              knownHosts.add(host.hostname, host.port, blob).then(accept, (err: unknown) => {
                verdictError = new SshgateError('HOST_KEY_UNKNOWN', `${where}: cannot record the new host key in ${knownHosts.file}: ${(err as Error).message}`);
                verify(false);
              });
              return;
            }
            verdictError = new SshgateError('HOST_KEY_UNKNOWN', describeUnknownHost(host.hostname, host.port, blob, knownHosts.file), {
              details: { fingerprint, key_type: keyType, known_hosts_line: formatKnownHostsLine(host.hostname, host.port, blob) },
            });
            verify(false);
            return;
        }
      },
      authHandler: methods,
      keepaliveInterval: settings.keepaliveIntervalMs,
      keepaliveCountMax: settings.keepaliveCountMax,
      readyTimeout: settings.connectTimeoutMs,
      ...(hostKeyAlgorithms === undefined ? {} : { algorithms: { serverHostKey: hostKeyAlgorithms as never } }),
    });
  });
}
