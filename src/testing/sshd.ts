// Throwaway real OpenSSH sshd processes on loopback, for the integration tests, the bench and `sshgate demo`.
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { constants, existsSync, readdirSync, readFileSync } from 'node:fs';
import { access, chmod, mkdir, mkdtemp, open, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { createConnection, createServer } from 'node:net';
import { tmpdir, userInfo } from 'node:os';
import { join, resolve } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { promisify } from 'node:util';
import { isMainThread } from 'node:worker_threads';

const execFileAsync = promisify(execFile);

export type KeyType = 'ed25519' | 'ecdsa' | 'rsa';

/** Options of {@link startSshd}. Every field has a default that suits a test on this machine. */
export interface SshdOptions {
  /** Loopback address to listen on (default `127.0.0.1`); use `127.0.0.2`, `.3`, ... for several hosts. */
  address?: string | undefined;
  /** Port to listen on (default: a free port on `address`, re-picked if another process takes it first). */
  port?: number | undefined;
  /**
   * Extra sshd_config lines, e.g. `['MaxSessions 2']`. A keyword given here replaces the fixture's default for
   * it (sshd keeps the first value it reads); lines from the first `Match` on are placed at the end.
   */
  extraConfig?: readonly string[] | undefined;
  /** Account the client key logs into (default: the current user; a non-root process can only serve itself). */
  user?: string | undefined;
  /** Host key algorithm (default `ed25519`). */
  hostKeyType?: KeyType | undefined;
  /** Working directory (default: a fresh `mkdtemp` under the OS temp dir). Keys found there are reused. */
  dir?: string | undefined;
  /** sshd binary (default `SSHGATE_SSHD`, else `/usr/sbin/sshd`); made absolute, as sshd's re-exec requires. */
  sshdPath?: string | undefined;
}

/** A running (or stopped) sshd started by {@link startSshd}. */
export interface SshdInstance {
  readonly address: string;
  readonly port: number;
  readonly user: string;
  /** Pid of the listener; it changes after {@link SshdInstance.restart}. */
  readonly pid: number;
  readonly dir: string;
  readonly hostKeyPath: string;
  /** `'<algorithm> <base64>'`, without comment. `${hostKeyPath}.pub` holds it too. */
  readonly hostPublicKey: string;
  /** Unencrypted ed25519 private key authorised for `user` (its public half is `${clientKeyPath}.pub`). */
  readonly clientKeyPath: string;
  /** `'[address]:port <algorithm> <base64>'`. */
  readonly knownHostsLine: string;
  /** A file holding {@link SshdInstance.knownHostsLine}. */
  readonly knownHostsPath: string;
  readonly configPath: string;
  /** sshd's stderr (`-e`), the listener's and every per-connection child's, across restarts. */
  readonly logPath: string;
  /** The last `lines` lines of the log. */
  logTail(lines?: number): Promise<string>;
  /**
   * SIGTERM to the listener, SIGKILL after 3 s; resolves once it has exited. Like systemd's `KillMode=process`,
   * connections already open keep their per-connection sshd and stay usable. Idempotent.
   */
  stop(): Promise<void>;
  /** SIGKILL to the listener and every process below it (per-connection sshds, sessions): a host crash. */
  kill(): Promise<void>;
  /** {@link SshdInstance.stop}, then a new listener on the same address and port with the same keys. */
  restart(): Promise<void>;
  /** Pids of the listener's live per-connection children (parent pid read from `/proc`). */
  childPids(): Promise<number[]>;
  /** Pids of every live process below the listener (per-connection sshds, their session children, commands). */
  descendantPids(): Promise<number[]>;
  /** {@link SshdInstance.kill}, then removes `dir` if the fixture created it. */
  dispose(): Promise<void>;
}

/** OpenSSH is not installed where the fixture looks. The message carries the install command. */
export class SshdNotFoundError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'SshdNotFoundError';
  }
}

/** sshd exited or did not answer with an SSH banner in time. `logTail` is the end of its stderr. */
export class SshdStartError extends Error {
  readonly logTail: string;

  constructor(message: string, logTail: string) {
    super(`${message}\n--- last lines of its log ---\n${logTail}`);
    this.name = 'SshdStartError';
    this.logTail = logTail;
  }
}

const READY_TIMEOUT_MS = 10_000;
const STOP_GRACE_MS = 3_000;
const FREE_PORT_ATTEMPTS = 5;
const FIXED_PORT_ATTEMPTS = 15;
const SFTP_SERVER_CANDIDATES = ['/usr/lib/openssh/sftp-server', '/usr/libexec/openssh/sftp-server', '/usr/libexec/sftp-server', '/usr/lib/ssh/sftp-server'];
const SETPRIV = '/usr/bin/setpriv';

/** Returns a port that was free on `address` a moment ago (the kernel's choice for port 0). */
export async function freePort(address: string): Promise<number> {
  return new Promise<number>((resolvePort, reject) => {
    const server = createServer();
    server.unref();
    server.once('error', reject);
    server.listen({ host: address, port: 0, exclusive: true }, () => {
      const bound = server.address();
      server.close(() => {
        if (bound !== null && typeof bound === 'object') resolvePort(bound.port);
        else reject(new Error(`could not read the port bound on ${address}`));
      });
    });
  });
}

/**
 * Writes a new key pair at `path` and `path.pub` (replacing any) with ssh-keygen, unencrypted unless
 * `passphrase` is given, and returns the public key as `'<algorithm> <base64>'`.
 * Throws {@link SshdNotFoundError} when ssh-keygen is missing.
 */
export async function generateKey(path: string, type: KeyType = 'ed25519', passphrase = ''): Promise<string> {
  await rm(path, { force: true });
  await rm(`${path}.pub`, { force: true });
  const keygen = process.env['SSHGATE_SSH_KEYGEN'] ?? 'ssh-keygen';
  const bits = type === 'rsa' ? ['-b', '3072'] : [];
  try {
    await execFileAsync(keygen, ['-q', '-t', type, ...bits, '-N', passphrase, '-C', '', '-f', path]);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') {
      throw new SshdNotFoundError(
        `ssh-keygen not found (${keygen}). Install OpenSSH with:  sudo apt-get update && sudo apt-get install -y openssh-client openssh-server`,
      );
    }
    throw err;
  }
  return publicKeyOf(await readFile(`${path}.pub`, 'utf8'));
}

/** Starts an sshd and resolves once it has logged that it listens and answered a TCP connect with its banner. */
export async function startSshd(options: SshdOptions = {}): Promise<SshdInstance> {
  const sshdPath = resolve(options.sshdPath ?? process.env['SSHGATE_SSHD'] ?? '/usr/sbin/sshd');
  try {
    await access(sshdPath, constants.X_OK);
  } catch {
    throw new SshdNotFoundError(
      `OpenSSH sshd not found at ${sshdPath}. Install it with:  sudo apt-get update && sudo apt-get install -y openssh-server` +
        '   (Debian/Ubuntu), or point SSHGATE_SSHD at an sshd binary.',
    );
  }
  const isRoot = process.getuid?.() === 0;
  const currentUser = userInfo().username;
  const user = options.user ?? currentUser;
  if (!isRoot && user !== currentUser) {
    throw new Error(`a non-root sshd can only log in the user running it (${currentUser}), not ${user}`);
  }
  if (isRoot) {
    // sshd refuses to start as root without its privilege separation directory; containers often lack it.
    await mkdir('/run/sshd', { recursive: true, mode: 0o755 });
  }

  const isOwnDir = options.dir === undefined;
  const dir = options.dir === undefined ? await mkdtemp(join(tmpdir(), 'sshgate-sshd-')) : resolve(options.dir);
  await mkdir(dir, { recursive: true });
  const address = options.address ?? '127.0.0.1';
  const hostKeyType = options.hostKeyType ?? 'ed25519';
  const hostKeyPath = join(dir, `ssh_host_${hostKeyType}_key`);
  const clientKeyPath = join(dir, 'id_ed25519');
  const [hostPublicKey, clientPublicKey] = await Promise.all([reuseOrGenerateKey(hostKeyPath, hostKeyType), reuseOrGenerateKey(clientKeyPath, 'ed25519')]);
  const authorizedKeysPath = join(dir, 'authorized_keys');
  await writeFile(authorizedKeysPath, `${clientPublicKey}\n`, { mode: 0o644 });
  if (isRoot && user !== 'root') {
    // sshd reads authorized_keys as the target user: mkdtemp's 0700 would hide it.
    await chmod(dir, 0o755);
    await chmod(authorizedKeysPath, 0o644);
  }

  const configPath = join(dir, 'sshd_config');
  const logPath = join(dir, 'sshd.log');
  const knownHostsPath = join(dir, 'known_hosts');
  const version = await sshdVersion(sshdPath);
  const sftpServer = SFTP_SERVER_CANDIDATES.find((p) => existsSync(p)) ?? 'internal-sftp';

  const server = new SshdServer({ sshdPath, address, dir, configPath, logPath });
  const renderConfig = (port: number): string =>
    renderSshdConfig({ address, port, hostKeyPath, dir, authorizedKeysPath, sftpServer, version, extra: options.extraConfig ?? [] });
  const port = await server.start(options.port, async (p) => {
    await writeFile(configPath, renderConfig(p));
  });
  const knownHostsLine = `${hostPattern(address, port)} ${hostPublicKey}`;
  await writeFile(knownHostsPath, `${knownHostsLine}\n`);

  return {
    address,
    port,
    user,
    get pid() {
      return server.pid;
    },
    dir,
    hostKeyPath,
    hostPublicKey,
    clientKeyPath,
    knownHostsLine,
    knownHostsPath,
    configPath,
    logPath,
    logTail: (lines = 30) => readTail(logPath, lines),
    stop: () => server.stop(),
    kill: () => server.kill(),
    restart: async () => {
      await server.stop();
      await server.start(port, async () => {});
    },
    childPids: () => Promise.resolve(server.childPids()),
    descendantPids: () => Promise.resolve(server.descendantPids()),
    dispose: async () => {
      await server.kill();
      if (isOwnDir) await rm(dir, { recursive: true, force: true });
    },
  };
}

async function reuseOrGenerateKey(path: string, type: KeyType): Promise<string> {
  if (existsSync(path) && existsSync(`${path}.pub`)) return publicKeyOf(await readFile(`${path}.pub`, 'utf8'));
  return generateKey(path, type);
}

function publicKeyOf(pubFile: string): string {
  const [algorithm, base64] = pubFile.trim().split(/\s+/u);
  if (algorithm === undefined || base64 === undefined) throw new Error(`not an OpenSSH public key: ${pubFile.slice(0, 80)}`);
  return `${algorithm} ${base64}`;
}

/** The host part of a known_hosts line, as OpenSSH writes it for this address and port. */
function hostPattern(address: string, port: number): string {
  return port === 22 ? address : `[${address}]:${port}`;
}

interface Version {
  major: number;
  minor: number;
}

const versions = new Map<string, Promise<Version | null>>();

/** sshd's version from `sshd -V` (which exits non-zero after printing it), or null when unreadable. */
function sshdVersion(sshdPath: string): Promise<Version | null> {
  let cached = versions.get(sshdPath);
  if (cached === undefined) {
    cached = new Promise<Version | null>((resolveVersion) => {
      execFile(sshdPath, ['-V'], (_err, stdout, stderr) => {
        const match = /OpenSSH_(\d+)\.(\d+)/u.exec(`${stderr}${stdout}`);
        resolveVersion(match === null ? null : { major: Number(match[1]), minor: Number(match[2]) });
      });
    });
    versions.set(sshdPath, cached);
  }
  return cached;
}

let deathSignalSupport: Promise<boolean> | null = null;

/** True when util-linux setpriv is present and knows --pdeathsig (util-linux 2.33+). */
function canSetDeathSignal(): Promise<boolean> {
  deathSignalSupport ??= new Promise<boolean>((resolveSupport) => {
    if (!existsSync(SETPRIV)) {
      resolveSupport(false);
      return;
    }
    execFile(SETPRIV, ['--pdeathsig', 'KILL', '--', 'true'], (err) => {
      resolveSupport(err === null);
    });
  });
  return deathSignalSupport;
}

interface ConfigInput {
  address: string;
  port: number;
  hostKeyPath: string;
  dir: string;
  authorizedKeysPath: string;
  sftpServer: string;
  version: Version | null;
  extra: readonly string[];
}

/** The identity of a config line for override purposes: its keyword, plus the name for `Subsystem`. */
function configKey(line: string): string | null {
  const words = line.trim().split(/[\s=]+/u);
  const keyword = words[0]?.toLowerCase();
  if (keyword === undefined || keyword === '' || keyword.startsWith('#')) return null;
  return keyword === 'subsystem' ? `subsystem ${words[1] ?? ''}` : keyword;
}

function renderSshdConfig(c: ConfigInput): string {
  const matchAt = c.extra.findIndex((l) => /^\s*Match\s/iu.test(l));
  const head = matchAt === -1 ? c.extra : c.extra.slice(0, matchAt);
  const tail = matchAt === -1 ? [] : c.extra.slice(matchAt);
  const overridden = new Set(head.map(configKey).filter((k) => k !== null));
  const listen = c.address.includes(':') ? `[${c.address}]:${c.port}` : `${c.address}:${c.port}`;
  const defaults = [
    `AuthorizedKeysFile ${c.authorizedKeysPath}`,
    // The fixture's files live in a temp dir that StrictModes would reject.
    'StrictModes no',
    'UsePAM no',
    'PasswordAuthentication no',
    'KbdInteractiveAuthentication no',
    'PubkeyAuthentication yes',
    'PermitRootLogin yes',
    'PermitUserEnvironment no',
    `Subsystem sftp ${c.sftpServer}`,
    'LogLevel VERBOSE',
    'PrintMotd no',
    'PrintLastLog no',
    'UseDNS no',
    'X11Forwarding no',
    // bash sources ~/.bashrc for commands run by sshd unless it believes it is nested: SHLVL=1 keeps the
    // operator's dotfiles (here root's pyenv init, ~1 s per command) out of non-interactive test commands.
    // sshd keeps only the first SetEnv line, so an extraConfig SetEnv replaces this one.
    'SetEnv SHLVL=1',
  ];
  if (c.version !== null && (c.version.major > 9 || (c.version.major === 9 && c.version.minor >= 8))) {
    // OpenSSH 9.8+ penalises sources whose connections fail; fault tests fail connections from 127.0.0.1 on purpose.
    defaults.push('PerSourcePenalties no');
  }
  return [
    '# Generated by sshgate src/testing/sshd.ts for a throwaway test sshd.',
    `ListenAddress ${listen}`,
    `HostKey ${c.hostKeyPath}`,
    `PidFile ${join(c.dir, 'sshd.pid')}`,
    ...head,
    ...defaults.filter((line) => !overridden.has(configKey(line) ?? '')),
    ...tail,
    '',
  ].join('\n');
}

interface ServerPaths {
  sshdPath: string;
  address: string;
  dir: string;
  configPath: string;
  logPath: string;
}

interface Running {
  child: ChildProcess;
  pid: number;
  exited: Promise<void>;
  hasExited: boolean;
}

/** One sshd listener process at a time, with its start, stop, kill and process-tree bookkeeping. */
class SshdServer {
  private running: Running | null = null;
  private lastPid = 0;
  private stopping: Promise<void> | null = null;

  private readonly paths: ServerPaths;

  constructor(paths: ServerPaths) {
    this.paths = paths;
  }

  get pid(): number {
    return this.running?.pid ?? this.lastPid;
  }

  /**
   * Starts the listener on `port`, or on a fresh free port when `port` is undefined (re-picked when another
   * process binds it first). `prepare` writes the config for the chosen port before each spawn.
   */
  async start(port: number | undefined, prepare: (port: number) => Promise<void>): Promise<number> {
    const attempts = port === undefined ? FREE_PORT_ATTEMPTS : FIXED_PORT_ATTEMPTS;
    let lastError: SshdStartError | null = null;
    for (let attempt = 0; attempt < attempts; attempt += 1) {
      const chosen = port ?? (await freePort(this.paths.address));
      await prepare(chosen);
      const outcome = await this.spawnOnce(chosen);
      if (outcome === 'ready') return chosen;
      lastError = outcome;
      if (!/Address already in use|Cannot bind any address/u.test(outcome.logTail)) throw outcome;
      // A fixed port may be held for a moment by a previous listener's lingering process; a free one is re-picked.
      if (port !== undefined) await delay(200);
    }
    throw lastError ?? new Error('sshd did not start');
  }

  private async spawnOnce(port: number): Promise<'ready' | SshdStartError> {
    const { sshdPath, address, configPath, logPath } = this.paths;
    const logOffset = await stat(logPath).then(
      (s) => s.size,
      () => 0,
    );
    const log = await open(logPath, 'a');
    const sshdArgs = [sshdPath, '-D', '-e', '-f', configPath];
    // setpriv --pdeathsig: the kernel kills the listener if this process dies without running its exit hook.
    // Only from the main thread: the death signal follows the spawning thread, and a worker thread may end first.
    const [command, ...args] = isMainThread && (await canSetDeathSignal()) ? [SETPRIV, '--pdeathsig', 'KILL', '--', ...sshdArgs] : sshdArgs;
    let child: ChildProcess;
    try {
      child = spawn(command ?? sshdPath, args, { stdio: ['ignore', 'ignore', log.fd] });
    } finally {
      await log.close();
    }
    const spawnError = new Promise<Error>((resolveError) => child.once('error', resolveError));
    const pid = child.pid;
    if (pid === undefined) {
      const err = await spawnError;
      return new SshdStartError(`could not spawn ${sshdPath}: ${err.message}`, '');
    }
    const running: Running = {
      child,
      pid,
      hasExited: false,
      exited: new Promise<void>((resolveExit) => {
        child.once('exit', () => {
          running.hasExited = true;
          livePids.delete(pid);
          resolveExit();
        });
      }),
    };
    livePids.add(pid);
    registerExitHook();
    this.running = running;
    this.lastPid = pid;

    const where = `${address}:${port} (log: ${logPath})`;
    const deadline = Date.now() + READY_TIMEOUT_MS;
    while (Date.now() < deadline) {
      if (running.hasExited) {
        this.running = null;
        return new SshdStartError(`sshd on ${where} exited during start-up (exit code ${child.exitCode ?? child.signalCode ?? '?'})`, await readTail(logPath, 30, logOffset));
      }
      const logged = await readFile(logPath, 'utf8').then((t) => t.slice(logOffset));
      // The log line proves *our* process bound the port: a banner alone could come from another process's listener.
      if (logged.includes('Server listening on') && (await probeBanner(address, port, 1_000))) {
        await this.waitForNoChildren(1_000);
        return 'ready';
      }
      await delay(20);
    }
    await this.kill();
    return new SshdStartError(`sshd on ${where} did not answer with an SSH banner within ${READY_TIMEOUT_MS / 1000} s`, await readTail(logPath, 30, logOffset));
  }

  /** The readiness probe leaves a short-lived per-connection child; start with none so tests can count them. */
  private async waitForNoChildren(timeoutMs: number): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (this.childPids().length > 0 && Date.now() < deadline) await delay(10);
  }

  stop(): Promise<void> {
    this.stopping ??= this.stopListener().finally(() => {
      this.stopping = null;
    });
    return this.stopping;
  }

  private async stopListener(): Promise<void> {
    const running = this.running;
    if (running === null) return;
    if (!running.hasExited) {
      signal(running.pid, 'SIGTERM');
      const timedOut = await Promise.race([running.exited.then(() => false), delay(STOP_GRACE_MS).then(() => true)]);
      if (timedOut) signal(running.pid, 'SIGKILL');
      await running.exited;
    }
    if (this.running === running) this.running = null;
  }

  async kill(): Promise<void> {
    const running = this.running;
    if (running === null) return;
    const victims = running.hasExited ? [] : freezeAndKillTree(running.pid);
    await running.exited;
    if (this.running === running) this.running = null;
    // SIGKILL is asynchronous: wait until the per-connection children are really gone (or zombies).
    const deadline = Date.now() + 2_000;
    while (Date.now() < deadline) {
      const table = processTable();
      if (victims.every((p) => !isAlive(table.get(p)))) return;
      await delay(10);
    }
  }

  childPids(): number[] {
    const running = this.running;
    if (running === null || running.hasExited) return [];
    const table = processTable();
    return [...table].filter(([, p]) => p.ppid === running.pid && isAlive(p)).map(([pid]) => pid);
  }

  descendantPids(): number[] {
    const running = this.running;
    if (running === null || running.hasExited) return [];
    const table = processTable();
    return descendants(running.pid, table).filter((p) => isAlive(table.get(p)));
  }
}

/** Connects and resolves true once the peer sends an SSH-2.0 identification line. */
function probeBanner(address: string, port: number, timeoutMs: number): Promise<boolean> {
  return new Promise<boolean>((resolveProbe) => {
    let received = '';
    const socket = createConnection({ host: address, port });
    const done = (ok: boolean): void => {
      socket.destroy();
      resolveProbe(ok);
    };
    socket.setTimeout(timeoutMs, () => {
      done(false);
    });
    socket.on('data', (chunk: Buffer) => {
      received += chunk.toString('latin1');
      if (received.includes('SSH-2.0-')) done(true);
      else if (received.length > 8192) done(false);
    });
    socket.once('error', () => {
      done(false);
    });
    socket.once('close', () => {
      done(received.includes('SSH-2.0-'));
    });
  });
}

async function readTail(path: string, lines: number, fromOffset = 0): Promise<string> {
  const text = await readFile(path, 'utf8').then(
    (t) => t.slice(fromOffset),
    () => '',
  );
  return text.trimEnd().split('\n').slice(-lines).join('\n');
}

interface ProcInfo {
  ppid: number;
  state: string;
}

/** A snapshot of every process's parent and state, read from /proc (never matched by name). */
function processTable(): Map<number, ProcInfo> {
  const table = new Map<number, ProcInfo>();
  let entries: string[];
  try {
    entries = readdirSync('/proc');
  } catch {
    return table;
  }
  for (const entry of entries) {
    if (!/^\d+$/u.test(entry)) continue;
    let text: string;
    try {
      text = readFileSync(`/proc/${entry}/stat`, 'latin1');
    } catch {
      continue; // exited between readdir and read
    }
    // The command name is in parentheses and may itself contain spaces or parentheses: split after the last one.
    const fields = text.slice(text.lastIndexOf(')') + 2).split(' ');
    const state = fields[0];
    const ppid = Number(fields[1]);
    if (state !== undefined && Number.isInteger(ppid)) table.set(Number(entry), { ppid, state });
  }
  return table;
}

function isAlive(info: ProcInfo | undefined): boolean {
  return info !== undefined && info.state !== 'Z' && info.state !== 'X';
}

function descendants(root: number, table: Map<number, ProcInfo>): number[] {
  const children = new Map<number, number[]>();
  for (const [pid, { ppid }] of table) {
    const list = children.get(ppid);
    if (list === undefined) children.set(ppid, [pid]);
    else list.push(pid);
  }
  const found: number[] = [];
  const queue = [root];
  for (let pid = queue.shift(); pid !== undefined; pid = queue.shift()) {
    for (const child of children.get(pid) ?? []) {
      found.push(child);
      queue.push(child);
    }
  }
  return found;
}

function signal(pid: number, name: NodeJS.Signals): void {
  try {
    process.kill(pid, name);
  } catch {
    // already gone
  }
}

const sleeper = new Int32Array(new SharedArrayBuffer(4));

function sleepSync(ms: number): void {
  Atomics.wait(sleeper, 0, 0, ms);
}

/**
 * SIGKILLs `root` and every process below it, synchronously, and returns the pids signalled.
 * 1. SIGSTOP the tree top-down until a pass finds no new process and all are stopped: a stopped process
 *    cannot fork, so nothing escapes between the snapshot and the kill.
 * 2. SIGKILL every frozen pid (SIGKILL also ends stopped processes).
 */
function freezeAndKillTree(root: number): number[] {
  const frozen = new Set<number>([root]);
  signal(root, 'SIGSTOP');
  const deadline = Date.now() + 1_000;
  while (Date.now() < deadline) {
    const table = processTable();
    let isSettled = true;
    for (const pid of descendants(root, table)) {
      if (!frozen.has(pid) && isAlive(table.get(pid))) {
        frozen.add(pid);
        signal(pid, 'SIGSTOP');
        isSettled = false;
      }
    }
    for (const pid of frozen) {
      const info = table.get(pid);
      if (isAlive(info) && info?.state !== 'T' && info?.state !== 't') isSettled = false;
    }
    if (isSettled) break;
    sleepSync(2);
  }
  for (const pid of frozen) signal(pid, 'SIGKILL');
  return [...frozen];
}

/** Listener pids still running; the exit hook kills them (and their trees) if a test run ends without stop(). */
const livePids = new Set<number>();
let isExitHookRegistered = false;

function registerExitHook(): void {
  if (isExitHookRegistered) return;
  isExitHookRegistered = true;
  process.on('exit', () => {
    for (const pid of livePids) freezeAndKillTree(pid);
  });
}

