// The fixtures the other integration tests stand on, checked with OpenSSH's own ssh and sftp clients.
import { execFile, spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { connect, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startSshd, type SshdInstance } from '../../src/testing/sshd.js';
import { startProxy, startTarpit } from '../helpers/tcp-proxy.js';

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

function run(command: string, args: readonly string[]): Promise<Run> {
  return new Promise<Run>((resolve) => {
    execFile(command, args, { timeout: 20_000 }, (err, stdout, stderr) => {
      const code = err === null ? 0 : typeof err.code === 'number' ? err.code : null;
      resolve({ code, stdout, stderr });
    });
  });
}

interface Target {
  host: string;
  port: number;
  knownHostsPath: string;
}

/** OpenSSH client options that trust nothing but the given known_hosts file and key. */
function clientOptions(sshd: SshdInstance, knownHostsPath: string): string[] {
  return [
    '-F', '/dev/null',
    '-o', 'BatchMode=yes',
    '-o', 'IdentitiesOnly=yes',
    '-o', 'IdentityAgent=none',
    '-o', `UserKnownHostsFile=${knownHostsPath}`,
    '-o', 'GlobalKnownHostsFile=/dev/null',
    '-o', 'StrictHostKeyChecking=yes',
    '-i', sshd.clientKeyPath,
  ];
}

function ssh(sshd: SshdInstance, command: string, target: Target = { host: sshd.address, port: sshd.port, knownHostsPath: sshd.knownHostsPath }): Promise<Run> {
  return run('ssh', [...clientOptions(sshd, target.knownHostsPath), '-p', String(target.port), `${sshd.user}@${target.host}`, command]);
}

/** The command line of a process, '' once it is gone. */
function cmdline(pid: number): string {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'latin1').split('\0').filter((w) => w !== '').join(' ');
  } catch {
    return '';
  }
}

/** True when the pid no longer runs (gone, or a zombie nobody reaped). */
function isDead(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'latin1');
    const state = stat.slice(stat.lastIndexOf(')') + 2).split(' ')[0];
    return state === 'Z' || state === 'X';
  } catch {
    return true;
  }
}

async function until(predicate: () => boolean | Promise<boolean>, what: string, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await predicate())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await delay(20);
  }
}

/** A plain TCP client that records what it receives and how it ended. */
interface RawClient {
  socket: Socket;
  received(): string;
  closed: Promise<NodeJS.ErrnoException | null>;
}

function rawConnect(host: string, port: number): RawClient {
  const socket = connect({ host, port });
  let data = '';
  let error: NodeJS.ErrnoException | null = null;
  socket.on('data', (chunk: Buffer) => {
    data += chunk.toString('latin1');
  });
  socket.on('error', (err) => {
    error = err;
  });
  const closed = new Promise<NodeJS.ErrnoException | null>((resolve) => {
    socket.on('close', () => {
      resolve(error);
    });
  });
  return { socket, received: () => data, closed };
}

let a: SshdInstance;
let b: SshdInstance;

beforeAll(async () => {
  [a, b] = await Promise.all([
    startSshd({ address: '127.0.0.2' }),
    startSshd({ address: '127.0.0.3', hostKeyType: 'ecdsa', extraConfig: ['MaxSessions 2', 'Match User nobody', '  PermitTTY no'] }),
  ]);
});

afterAll(async () => {
  await Promise.all([a.dispose(), b.dispose()]);
});

describe('startSshd', () => {
  it.each([
    ['127.0.0.2', 'ssh-ed25519', () => a],
    ['127.0.0.3', 'ecdsa-sha2-nistp256', () => b],
  ])('serves %s to OpenSSH ssh with the generated key, trusted through the generated known_hosts line (%s)', async (address, algorithm, get) => {
    const sshd = get();
    expect(sshd.address).toBe(address);
    expect(sshd.hostPublicKey.startsWith(`${algorithm} AAAA`)).toBe(true);
    expect(sshd.knownHostsLine).toBe(`[${address}]:${sshd.port} ${sshd.hostPublicKey}`);
    expect(await readFile(sshd.knownHostsPath, 'utf8')).toBe(`${sshd.knownHostsLine}\n`);
    expect((await readFile(`${sshd.hostKeyPath}.pub`, 'utf8')).startsWith(sshd.hostPublicKey)).toBe(true);
    const r = await ssh(sshd, 'echo hi');
    expect(r.stderr).toBe('');
    expect(r).toMatchObject({ code: 0, stdout: 'hi\n' });
    // The per-connection sshd exits just after the client does.
    await until(async () => (await sshd.childPids()).length === 0, 'the per-connection sshd to exit');
  });

  it('is refused by OpenSSH ssh when known_hosts pins another host key for that host and port', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'sshgate-fixture-'));
    try {
      const forged = join(dir, 'known_hosts');
      await writeFile(forged, `[${a.address}]:${a.port} ${b.hostPublicKey}\n`);
      const r = await ssh(a, 'echo hi', { host: a.address, port: a.port, knownHostsPath: forged });
      expect(r.code).toBe(255);
      expect(r.stderr).toMatch(/Host key verification failed/u);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('serves SFTP to OpenSSH sftp -b', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'sshgate-fixture-'));
    try {
      await writeFile(join(dir, 'local.txt'), 'payload\n');
      await writeFile(join(dir, 'batch'), [`cd ${dir}`, `lcd ${dir}`, 'put local.txt remote.txt', 'rename remote.txt renamed.txt', 'ls'].join('\n'));
      const r = await run('sftp', [...clientOptions(a, a.knownHostsPath), '-b', join(dir, 'batch'), '-P', String(a.port), `${a.user}@${a.address}`]);
      expect(r).toMatchObject({ code: 0, stderr: '' });
      expect(r.stdout).toContain('renamed.txt');
      expect(await readFile(join(dir, 'renamed.txt'), 'utf8')).toBe('payload\n');
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('applies extraConfig over the defaults, with Match blocks kept last', async () => {
    const config = await readFile(b.configPath, 'utf8');
    expect(config.indexOf('MaxSessions 2')).toBeLessThan(config.indexOf('StrictModes no'));
    expect(config.trimEnd().endsWith('Match User nobody\n  PermitTTY no')).toBe(true);
    const effective = await run(process.env['SSHGATE_SSHD'] ?? '/usr/sbin/sshd', ['-T', '-f', b.configPath]);
    expect(effective.code).toBe(0);
    expect(effective.stdout).toMatch(/^maxsessions 2$/mu);
    expect(effective.stdout).toMatch(/^passwordauthentication no$/mu);
    expect(effective.stdout).toMatch(/^setenv SHLVL=1$/mu);
  });

  it("runs commands without the account's ~/.bashrc (SHLVL=1 makes bash skip it)", async () => {
    expect(await ssh(a, 'echo "$SHLVL"')).toMatchObject({ code: 0, stdout: '2\n' });
  });

  it('logs sshd stderr to dir/sshd.log', async () => {
    expect(existsSync(join(a.dir, 'sshd.log'))).toBe(true);
    expect(await a.logTail(500)).toMatch(/Accepted publickey for /u);
  });
});

describe('kill, stop and restart', () => {
  it('kill() leaves no listener, per-connection child or session process behind', async () => {
    const victim = await startSshd({ address: '127.0.0.3' });
    try {
      const client = spawn('ssh', [...clientOptions(victim, victim.knownHostsPath), '-p', String(victim.port), `${victim.user}@${victim.address}`, 'sleep 61'], {
        stdio: 'ignore',
      });
      const clientExit = new Promise<number | null>((resolve) => client.once('exit', resolve));
      // The session is up once the command runs somewhere below the listener.
      await until(async () => (await victim.descendantPids()).some((p) => cmdline(p) === 'sleep 61'), 'the remote sleep');
      expect((await victim.childPids()).length).toBe(1);
      const tree = [victim.pid, ...(await victim.descendantPids())];

      await victim.kill();

      expect(tree.filter((p) => !isDead(p))).toEqual([]);
      expect(await victim.childPids()).toEqual([]);
      expect(await clientExit).toBe(255);
      const refused = rawConnect(victim.address, victim.port);
      expect((await refused.closed)?.code).toBe('ECONNREFUSED');
      await victim.kill();
      await victim.stop();
    } finally {
      await victim.dispose();
    }
  });

  it('restart() serves again on the same port with the same host key; open sessions survive it', async () => {
    const sshd = await startSshd({ address: '127.0.0.2' });
    try {
      const { port, pid, knownHostsLine } = sshd;
      const client = spawn('ssh', [...clientOptions(sshd, sshd.knownHostsPath), '-p', String(port), `${sshd.user}@${sshd.address}`, 'sleep 1; echo survived']);
      let out = '';
      client.stdout.on('data', (chunk: Buffer) => {
        out += chunk.toString();
      });
      const clientExit = new Promise<number | null>((resolve) => client.once('exit', resolve));
      await until(async () => (await sshd.childPids()).length === 1, 'the session');

      await sshd.restart();

      expect(sshd.port).toBe(port);
      expect(sshd.pid).not.toBe(pid);
      expect(isDead(pid)).toBe(true);
      expect(sshd.knownHostsLine).toBe(knownHostsLine);
      expect(await ssh(sshd, 'echo again')).toMatchObject({ code: 0, stdout: 'again\n' });
      expect(await clientExit).toBe(0);
      expect(out).toBe('survived\n');
    } finally {
      await sshd.dispose();
    }
  });

  it('stop() is idempotent and stops the listener', async () => {
    const sshd = await startSshd({ address: '127.0.0.2' });
    try {
      const pid = sshd.pid;
      await Promise.all([sshd.stop(), sshd.stop()]);
      await sshd.stop();
      expect(isDead(pid)).toBe(true);
      expect(await sshd.childPids()).toEqual([]);
      expect(await sshd.logTail()).toMatch(/Received signal 15; terminating\./u);
    } finally {
      await sshd.dispose();
    }
  });
});

describe('tcp proxy', () => {
  it('forwards an OpenSSH session', async () => {
    const proxy = await startProxy({ target: { host: a.address, port: a.port } });
    const dir = await mkdtemp(join(tmpdir(), 'sshgate-fixture-'));
    try {
      const knownHostsPath = join(dir, 'known_hosts');
      await writeFile(knownHostsPath, `[127.0.0.1]:${proxy.port} ${a.hostPublicKey}\n`);
      const r = await ssh(a, 'echo through', { host: '127.0.0.1', port: proxy.port, knownHostsPath });
      expect(r).toMatchObject({ code: 0, stdout: 'through\n' });
      expect(proxy.bytesForwarded()).toBeGreaterThan(1000);
    } finally {
      await proxy.close();
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('stall() holds bytes in both directions, with the sockets open, until resume()', async () => {
    const proxy = await startProxy({ target: { host: a.address, port: a.port } });
    try {
      const c = rawConnect('127.0.0.1', proxy.port);
      await until(() => c.received().includes('\n'), 'the banner');
      const banner = c.received();
      expect(banner).toMatch(/^SSH-2\.0-OpenSSH_/u);
      proxy.stall();
      const before = proxy.bytesForwarded();
      // sshd sends its KEXINIT only after reading our identification line.
      c.socket.write('SSH-2.0-sshgate_fixture_test\r\n');
      await delay(300);
      expect(proxy.bytesForwarded()).toBe(before);
      expect(c.received()).toBe(banner);
      expect(c.socket.destroyed).toBe(false);
      expect(proxy.connectionCount()).toBe(1);

      proxy.resume();
      await until(() => c.received().length > banner.length, 'the KEXINIT after resume');
      expect(proxy.bytesForwarded()).toBeGreaterThan(before + 30);
      c.socket.destroy();
    } finally {
      await proxy.close();
    }
  });

  it('resetAll() resets open connections with an RST and keeps accepting new ones', async () => {
    const proxy = await startProxy({ target: { host: a.address, port: a.port } });
    try {
      const c = rawConnect('127.0.0.1', proxy.port);
      await until(() => c.received().includes('\n'), 'the banner');
      proxy.resetAll();
      expect((await c.closed)?.code).toBe('ECONNRESET');
      expect(proxy.connectionCount()).toBe(0);

      const again = rawConnect('127.0.0.1', proxy.port);
      await until(() => again.received().startsWith('SSH-2.0-'), 'a banner on a new connection');
      again.socket.destroy();
    } finally {
      await proxy.close();
    }
  });

  it('cutAfter(n) passes exactly n server bytes, then closes the connection', async () => {
    const proxy = await startProxy({ target: { host: a.address, port: a.port } });
    try {
      proxy.cutAfter(10);
      const c = rawConnect('127.0.0.1', proxy.port);
      await c.closed;
      expect(c.received()).toBe('SSH-2.0-Op');

      proxy.cutAfter(Infinity);
      const whole = rawConnect('127.0.0.1', proxy.port);
      await until(() => whole.received().includes('\n'), 'a whole banner');
      whole.socket.destroy();
    } finally {
      await proxy.close();
    }
  });

  it('a session cut mid-stream fails in OpenSSH ssh, like a lost link', async () => {
    const proxy = await startProxy({ target: { host: a.address, port: a.port } });
    const dir = await mkdtemp(join(tmpdir(), 'sshgate-fixture-'));
    try {
      const knownHostsPath = join(dir, 'known_hosts');
      await writeFile(knownHostsPath, `[127.0.0.1]:${proxy.port} ${a.hostPublicKey}\n`);
      proxy.cutAfter(20_000);
      const r = await ssh(a, 'head -c 1000000 /dev/zero', { host: '127.0.0.1', port: proxy.port, knownHostsPath });
      expect(r.code).toBe(255);
      expect(r.stdout.length).toBeLessThan(20_000);
    } finally {
      await proxy.close();
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe('tarpit', () => {
  it('accepts connections and never sends a byte', async () => {
    const tarpit = await startTarpit('127.0.0.3');
    try {
      const c = rawConnect(tarpit.host, tarpit.port);
      await until(() => tarpit.connectionCount() === 1, 'the accept');
      await delay(300);
      expect(c.received()).toBe('');
      expect(c.socket.destroyed).toBe(false);

      const r = await run('ssh', ['-F', '/dev/null', '-o', 'BatchMode=yes', '-o', 'ConnectTimeout=1', '-p', String(tarpit.port), `nobody@${tarpit.host}`, 'true']);
      expect(r.code).toBe(255);
      expect(r.stderr).toMatch(/banner exchange/u);
      c.socket.destroy();
    } finally {
      await tarpit.close();
    }
  });
});
