// Jump hosts, ~/.ssh/config ProxyJump, reconnects and the circuit breaker, host certificates and network
// faults, against real sshd processes on 127.0.0.70-79 (one of them the bastion the others are reached through).
import { execFile } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config/load.js';
import { SshgateError } from '../../src/errors.js';
import { silentLogger } from '../../src/log.js';
import { KnownHostsStore } from '../../src/ssh/connect.js';
import { checkHostKey, parseKnownHosts } from '../../src/ssh/known-hosts.js';
import { ConnectionPool, type PoolSettings } from '../../src/ssh/pool.js';
import { freePort, generateKey, startSshd, type SshdInstance } from '../../src/testing/sshd.js';
import { startHarness, type Harness } from '../helpers/harness.js';
import { startProxy, startTarpit } from '../helpers/tcp-proxy.js';
import { waitFor } from '../helpers/wait.js';

const execFileAsync = promisify(execFile);

let bastion: SshdInstance;
let target: SshdInstance;
let target2: SshdInstance;
let inner: SshdInstance;
const sshds: SshdInstance[] = [];

/** sshd logs `server_request_direct_tcpip: ... target <addr> port <n>` at DEBUG1: proof that a tunnel was used. */
function tunnelsTo(via: SshdInstance, to: SshdInstance): number {
  const log = readFileSync(via.logPath, 'utf8');
  return log.split('\n').filter((l) => l.includes('server_request_direct_tcpip') && l.trimEnd().endsWith(`target ${to.address} port ${to.port}`)).length;
}

async function errorOf(promise: Promise<unknown>): Promise<SshgateError> {
  try {
    await promise;
  } catch (err) {
    if (err instanceof SshgateError) return err;
    throw err;
  }
  throw new Error('expected a failure');
}

const poolSettings: PoolSettings = {
  idleTimeoutMs: 60_000,
  maxConnectionsPerHost: 6,
  maxChannelsPerConnection: 8,
  maxHandshakesPerHost: 3,
  keepaliveIntervalMs: 15_000,
  keepaliveCountMax: 3,
  connectTimeoutMs: 10_000,
};

beforeAll(async () => {
  [bastion, target, target2, inner] = await Promise.all([
    startSshd({ address: '127.0.0.70', extraConfig: ['LogLevel DEBUG1'] }),
    startSshd({ address: '127.0.0.71' }),
    startSshd({ address: '127.0.0.72' }),
    startSshd({ address: '127.0.0.73', extraConfig: ['LogLevel DEBUG1'] }),
  ]);
  sshds.push(bastion, target, target2, inner);
});
afterAll(async () => {
  await Promise.all(sshds.map((s) => s.dispose()));
});

describe('jump hosts', () => {
  let h: Harness;
  beforeAll(async () => {
    h = await startHarness({
      hosts: {
        bastion: { sshd: bastion },
        target: { sshd: target, config: { jump: 'bastion' } },
        target2: { sshd: target2, config: { jump: 'bastion' } },
        inner: { sshd: inner, config: { jump: 'bastion' } },
        deep: { sshd: target2, config: { jump: 'inner' } },
      },
    });
  });
  afterAll(async () => {
    await h.close();
  });

  it('reaches a host through a direct-tcpip tunnel on the bastion, and the command runs there', async () => {
    const before = tunnelsTo(bastion, target);
    const out = await h.ok<{ stdout: string }>('ssh_exec', { host: 'target', command: 'echo "$SSH_CONNECTION"' });
    // The target sees the connection arriving from the bastion's sshd, which the bastion log confirms.
    expect(out.stdout).toMatch(new RegExp(`^\\S+ \\d+ ${target.address.replaceAll('.', '\\.')} ${target.port}\\n$`, 'u'));
    expect(tunnelsTo(bastion, target)).toBe(before + 1);
  });

  it('shares one pooled bastion connection between the hosts behind it; each tunnel holds one of its slots', async () => {
    await Promise.all([
      ...Array.from({ length: 12 }, (_, i) => h.ok('ssh_exec', { host: 'target', command: `echo ${i}` })),
      ...Array.from({ length: 4 }, () => h.ok('ssh_exec', { host: 'target2', command: 'true' })),
    ]);
    const stats = h.runtime.pool.stats();
    const targetConnections = (stats['target']?.connections ?? 0) + (stats['target2']?.connections ?? 0);
    expect(stats['bastion']?.connections).toBe(1);
    expect(stats['bastion']?.channels).toBe(targetConnections);
  });

  it('chains jumps (bastion -> inner -> target2), each hop tunnelled through the previous one', async () => {
    const viaBastion = tunnelsTo(bastion, inner);
    const viaInner = tunnelsTo(inner, target2);
    await h.ok('ssh_ping_host', { host: 'deep' });
    expect(tunnelsTo(bastion, inner)).toBeGreaterThanOrEqual(viaBastion);
    expect(tunnelsTo(inner, target2)).toBe(viaInner + 1);
  });

  it('a host behind a bastion whose sshd is down is unreachable, even though the host itself is up', async () => {
    const down = await startSshd({ address: '127.0.0.74' });
    sshds.push(down);
    const fh = await startHarness({ hosts: { gate: { sshd: down }, target: { sshd: target, config: { jump: 'gate' } } } });
    try {
      await down.stop();
      const e = await fh.err('ssh_ping_host', { host: 'target' });
      expect(e.code).toBe('CONNECT_FAILED');
      expect(e.message).toMatch(/^target: via jump host gate: gate \(127\.0\.0\.74:\d+\): cannot connect/u);
      expect(e.details).toMatchObject({ hop: 'gate', route: ['gate', 'target'] });
    } finally {
      await fh.close();
    }
  });
});

describe('which hop failed', () => {
  let otherKey: string;
  beforeAll(async () => {
    const dir = mkdtempSync(join(tmpdir(), 'sshgate-key-'));
    otherKey = join(dir, 'other');
    await generateKey(otherKey);
  });

  it('authentication refused by the bastion says "via jump host bastion", details.hop = bastion', async () => {
    const fh = await startHarness({ hosts: { bastion: { sshd: bastion, config: { identity_file: otherKey } }, target: { sshd: target, config: { jump: 'bastion' } } } });
    try {
      const e = await fh.err('ssh_ping_host', { host: 'target' });
      expect(e.code).toBe('AUTH_FAILED');
      expect(e.message).toMatch(/^target: via jump host bastion: bastion \(127\.0\.0\.70:\d+\): authentication failed/u);
      expect(e.details?.['hop']).toBe('bastion');
    } finally {
      await fh.close();
    }
  });

  it('authentication refused by the target names the target (through the bastion), details.hop = target', async () => {
    const fh = await startHarness({ hosts: { bastion: { sshd: bastion }, target: { sshd: target, config: { jump: 'bastion', identity_file: otherKey } } } });
    try {
      const e = await fh.err('ssh_ping_host', { host: 'target' });
      expect(e.code).toBe('AUTH_FAILED');
      expect(e.message).toMatch(/^target \(127\.0\.0\.71:\d+ via bastion\): authentication failed/u);
      expect(e.details).toMatchObject({ hop: 'target', route: ['bastion', 'target'] });
      // The bastion itself was fine, and stays usable.
      await fh.ok('ssh_ping_host', { host: 'bastion' });
    } finally {
      await fh.close();
    }
  });

  it.each([
    ['the bastion', 'bastion', () => bastion, /^target: via jump host bastion: The host key of \[127\.0\.0\.70\]:\d+ is not in/u],
    ['the target (checked under its own address and port, not the bastion\'s)', 'target', () => target, /^The host key of \[127\.0\.0\.71\]:\d+ is not in/u],
  ])('every hop is host-key checked: an unknown key on %s is refused', async (_name, hop, sshd, message) => {
    const fh = await startHarness({ hosts: { bastion: { sshd: bastion }, target: { sshd: target, config: { jump: 'bastion' } } } });
    try {
      const lines = readFileSync(fh.knownHostsPath, 'utf8').split('\n').filter((l) => l !== '' && l !== sshd().knownHostsLine);
      writeFileSync(fh.knownHostsPath, `${lines.join('\n')}\n`);
      const e = await fh.err('ssh_ping_host', { host: 'target' });
      expect(e.code).toBe('HOST_KEY_UNKNOWN');
      expect(e.message).toMatch(message);
      expect(e.details?.['hop']).toBe(hop);
    } finally {
      await fh.close();
    }
  });

  it('a bastion that cannot reach the target says so, naming both', async () => {
    const closed = await freePort('127.0.0.75');
    const fh = await startHarness({
      hosts: { bastion: { sshd: bastion }, nowhere: { sshd: { ...target, address: '127.0.0.75', port: closed }, config: { jump: 'bastion' } } },
    });
    try {
      const e = await fh.err('ssh_ping_host', { host: 'nowhere' });
      expect(e.code).toBe('CONNECT_FAILED');
      expect(e.message).toContain(`nowhere: the jump host bastion could not open a tunnel to 127.0.0.75:${closed}`);
    } finally {
      await fh.close();
    }
  });
});

describe('ProxyJump from ~/.ssh/config', () => {
  it('imports the hosts and reaches the target through the hop, pooled under the hop alias', async () => {
    const home = mkdtempSync(join(tmpdir(), 'sshgate-home-'));
    mkdirSync(join(home, '.ssh'));
    writeFileSync(join(home, '.ssh', 'known_hosts'), `${bastion.knownHostsLine}\n${target.knownHostsLine}\n${target2.knownHostsLine}\n`);
    writeFileSync(
      join(home, '.ssh', 'config'),
      [
        'Host target',
        `  HostName ${target.address}`,
        `  Port ${target.port}`,
        '  ProxyJump bastion',
        'Host target2',
        `  HostName ${target2.address}`,
        `  Port ${target2.port}`,
        `  ProxyJump ${bastion.user}@${bastion.address}:${bastion.port}`,
        `  IdentityFile ${target2.clientKeyPath}`,
        'Host bastion',
        `  HostName ${bastion.address}`,
        `  Port ${bastion.port}`,
        // The user@host:port hop is resolved through the config like `ssh -J` does: by its host name.
        `Host bastion ${bastion.address}`,
        `  IdentityFile ${bastion.clientKeyPath}`,
        'Host *',
        `  User ${target.user}`,
        `  IdentityFile ${target.clientKeyPath}`,
        '  IdentitiesOnly yes',
      ].join('\n'),
    );
    const loaded = await loadConfig({}, { XDG_CONFIG_HOME: join(home, 'xdg') }, home);
    expect(loaded.source.kind).toBe('ssh_config');
    const pool = new ConnectionPool(new KnownHostsStore(loaded.knownHostsFile, 'strict'), poolSettings, silentLogger);
    const signal = AbortSignal.timeout(20_000);
    try {
      const before = [tunnelsTo(bastion, target), tunnelsTo(bastion, target2)];
      await pool.info(loaded.hosts.get('target')!, signal);
      await pool.info(loaded.hosts.get('target2')!, signal);
      expect([tunnelsTo(bastion, target), tunnelsTo(bastion, target2)]).toEqual([before[0]! + 1, before[1]! + 1]);
      // "bastion" is an imported host: the target's tunnel rides its pooled connection. The user@host:port hop is
      // a separate (synthetic) pool entry.
      expect(Object.keys(pool.stats()).sort()).toEqual(['bastion', `${bastion.user}@${bastion.address}:${bastion.port}`, 'target', 'target2'].sort());
    } finally {
      pool.closeAll();
    }
  });
});

describe('reconnects and the circuit breaker', () => {
  it('after repeated connect failures a host fails fast, saying when it is retried; other hosts are unaffected', async () => {
    const closed = await freePort('127.0.0.76');
    const fh = await startHarness({ hosts: { dead: { sshd: { ...target, address: '127.0.0.76', port: closed } }, target: { sshd: target } } });
    try {
      for (let i = 0; i < 3; i += 1) expect((await fh.err('ssh_ping_host', { host: 'dead' })).message).toMatch(/ECONNREFUSED/u);
      const started = Date.now();
      const e = await fh.err('ssh_ping_host', { host: 'dead' });
      expect(Date.now() - started).toBeLessThan(200);
      expect(e.code).toBe('CONNECT_FAILED');
      expect(e.message).toMatch(/^dead: not trying to connect until \d{4}-\d\d-\d\dT[\d:.]+Z \(in \d+ s\): the last 3 connection attempts failed/u);
      expect(e.details).toMatchObject({ circuit: 'open', consecutive_failures: 3 });
      expect(fh.runtime.pool.circuit('dead')?.state).toBe('open');
      await fh.ok('ssh_ping_host', { host: 'target' });
      expect(fh.runtime.pool.circuit('target')?.state).toBe('closed');
    } finally {
      await fh.close();
    }
  });

  it('after the cooldown one attempt is let through; success closes the circuit', async () => {
    const port = await freePort('127.0.0.77');
    // The sshd started later reuses the key pair found in its directory, so the client key is known now.
    const lateDir = mkdtempSync(join(tmpdir(), 'sshgate-late-'));
    await generateKey(join(lateDir, 'id_ed25519'));
    const loaded = await loadConfig(
      { config: writeConfig({ known_hosts: { mode: 'accept-new' }, hosts: { late: { hostname: '127.0.0.77', port, user: target.user, identity_file: join(lateDir, 'id_ed25519') } } }) },
      {},
      mkdtempSync(join(tmpdir(), 'sshgate-home-')),
    );
    const host = loaded.hosts.get('late')!;
    const pool = new ConnectionPool(new KnownHostsStore(loaded.knownHostsFile, 'accept-new'), { ...poolSettings, breakerThreshold: 2, breakerCooldownMs: 400 }, silentLogger);
    try {
      await errorOf(pool.info(host, AbortSignal.timeout(5000)));
      await errorOf(pool.info(host, AbortSignal.timeout(5000)));
      expect(pool.circuit('late')?.state).toBe('open');
      expect((await errorOf(pool.info(host, AbortSignal.timeout(5000)))).details?.['circuit']).toBe('open');
      const late = await startSshd({ address: '127.0.0.77', port, dir: lateDir });
      sshds.push(late);
      await new Promise((r) => setTimeout(r, 450));
      expect(pool.circuit('late')?.state).toBe('half-open');
      await pool.info(host, AbortSignal.timeout(5000));
      expect(pool.circuit('late')).toEqual({ state: 'closed', consecutive_failures: 0, retry_at: null });
    } finally {
      pool.closeAll();
    }
  });

  it('a tarpit is retried with backoff only while the call waits, and the call fails at its timeout', async () => {
    const tarpit = await startTarpit('127.0.0.78');
    const fh = await startHarness({
      hosts: { pit: { sshd: { ...target, address: '127.0.0.78', port: tarpit.port } } },
      config: { limits: { timeout_ms: 1500 }, pool: { connect_timeout_ms: 300 } },
    });
    try {
      const started = Date.now();
      const e = await fh.err('ssh_ping_host', { host: 'pit' });
      const elapsed = Date.now() - started;
      expect(e.code).toBe('CONNECT_TIMEOUT');
      expect(elapsed).toBeLessThan(2500);
      const attempts = tarpit.connectionCount();
      expect(attempts).toBeGreaterThan(1);
      await new Promise((r) => setTimeout(r, 1500));
      expect(tarpit.connectionCount()).toBe(attempts);
    } finally {
      await fh.close();
      await tarpit.close();
    }
  });

  it('only calls marked idempotent are repeated after the connection is lost', async () => {
    const fh = await startHarness({ hosts: { target: { sshd: target } } });
    const host = fh.runtime.loaded.hosts.get('target')!;
    const signal = AbortSignal.timeout(10_000);
    const lose = (runs: { n: number }) => async (lease: { conn: { client: { end(): void } } }): Promise<string> => {
      runs.n += 1;
      if (runs.n === 1) {
        lease.conn.client.end();
        throw new SshgateError('CONNECTION_LOST', 'target: the connection was lost');
      }
      return Promise.resolve('second run');
    };
    try {
      const plain = { n: 0 };
      expect((await errorOf(fh.runtime.pool.withChannel(host, signal, lose(plain)))).code).toBe('CONNECTION_LOST');
      expect(plain.n).toBe(1);
      const idempotent = { n: 0 };
      expect(await fh.runtime.pool.withChannel(host, signal, lose(idempotent), { idempotent: true })).toBe('second run');
      expect(idempotent.n).toBe(2);
    } finally {
      await fh.close();
    }
  });
});

describe('network faults', () => {
  /** The pids below `sshd` running `sleep <seconds>`. */
  async function sleepers(sshd: SshdInstance, seconds: number): Promise<number[]> {
    const pids = await sshd.descendantPids();
    const out: number[] = [];
    for (const pid of pids) {
      try {
        if (readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').join(' ').trim() === `sleep ${seconds}`) out.push(pid);
      } catch {
        // exited meanwhile
      }
    }
    return out;
  }

  it('keepalive notices a stalled link within interval x count: CONNECTION_LOST, not a hang', async () => {
    const proxy = await startProxy({ target: { host: target.address, port: target.port }, listen: { host: '127.0.0.79' } });
    const fh = await startHarness({
      hosts: { flaky: { sshd: { ...target, address: proxy.host, port: proxy.port, knownHostsLine: `[${proxy.host}]:${proxy.port} ${target.hostPublicKey}` } } },
      config: { pool: { keepalive_interval_ms: 500, keepalive_count_max: 2 } },
    });
    try {
      const pending = fh.call('ssh_exec', { host: 'flaky', command: 'sleep 41', timeout_ms: 30_000 });
      expect(await waitFor(async () => (await sleepers(target, 41)).length === 1, 5000)).toBe(true);
      proxy.stall();
      const stalledAt = Date.now();
      const result = await pending;
      const detectedMs = Date.now() - stalledAt;
      expect(result.isError).toBe(true);
      expect((result.structuredContent as { error: { code: string } }).error.code).toBe('CONNECTION_LOST');
      // 500 ms x 2 unanswered keepalives, then the third interval: about 1.5 s.
      expect(detectedMs).toBeLessThan(4000);
      // Once the link is really gone, sshd ends the session: nothing is left running on the host.
      proxy.resetAll();
      expect(await waitFor(async () => (await sleepers(target, 41)).length === 0, 5000)).toBe(true);
      // The dead connection left the pool; the next call gets a new one.
      proxy.resume();
      await fh.ok('ssh_ping_host', { host: 'flaky' });
    } finally {
      await fh.close();
      await proxy.close();
    }
  });

  it('a reset link mid-call gives CONNECTION_LOST and leaves no process behind', async () => {
    const proxy = await startProxy({ target: { host: target.address, port: target.port }, listen: { host: '127.0.0.79' } });
    const fh = await startHarness({
      hosts: { flaky: { sshd: { ...target, address: proxy.host, port: proxy.port, knownHostsLine: `[${proxy.host}]:${proxy.port} ${target.hostPublicKey}` } } },
    });
    try {
      const pending = fh.call('ssh_exec', { host: 'flaky', command: 'sleep 42' });
      expect(await waitFor(async () => (await sleepers(target, 42)).length === 1, 5000)).toBe(true);
      proxy.resetAll();
      const result = await pending;
      expect(result.isError).toBe(true);
      const error = (result.structuredContent as { error: { code: string; message: string } }).error;
      expect(error.code).toBe('CONNECTION_LOST');
      expect(error.message).toMatch(/exit status is unknown/u);
      expect(await waitFor(async () => (await sleepers(target, 42)).length === 0, 5000)).toBe(true);
    } finally {
      await fh.close();
      await proxy.close();
    }
  });

  it('a stalled link to the bastion fails a call on the host behind it with CONNECTION_LOST', async () => {
    const proxy = await startProxy({ target: { host: bastion.address, port: bastion.port }, listen: { host: '127.0.0.79' } });
    const fh = await startHarness({
      hosts: {
        bastion: { sshd: { ...bastion, address: proxy.host, port: proxy.port, knownHostsLine: `[${proxy.host}]:${proxy.port} ${bastion.hostPublicKey}` } },
        target: { sshd: target, config: { jump: 'bastion' } },
      },
      config: { pool: { keepalive_interval_ms: 500, keepalive_count_max: 2 } },
    });
    try {
      const pending = fh.call('ssh_exec', { host: 'target', command: 'sleep 43', timeout_ms: 30_000 });
      expect(await waitFor(async () => (await sleepers(target, 43)).length === 1, 5000)).toBe(true);
      proxy.stall();
      const stalledAt = Date.now();
      const result = await pending;
      expect(Date.now() - stalledAt).toBeLessThan(4000);
      expect((result.structuredContent as { error: { code: string } }).error.code).toBe('CONNECTION_LOST');
      proxy.resetAll();
      expect(await waitFor(async () => (await sleepers(target, 43)).length === 0, 5000)).toBe(true);
    } finally {
      await fh.close();
      await proxy.close();
    }
  });
});

describe('host certificates (@cert-authority)', () => {
  let certified: SshdInstance;
  let dir: string;
  let caLine: string;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'sshgate-certhost-'));
    const caPub = await generateKey(join(dir, 'ca'));
    await generateKey(join(dir, 'ssh_host_ed25519_key'));
    await execFileAsync('ssh-keygen', ['-q', '-s', join(dir, 'ca'), '-h', '-I', 'certified-host', '-n', '127.0.0.78', join(dir, 'ssh_host_ed25519_key.pub')]);
    certified = await startSshd({ address: '127.0.0.78', dir, extraConfig: [`HostCertificate ${join(dir, 'ssh_host_ed25519_key-cert.pub')}`] });
    sshds.push(certified);
    caLine = `@cert-authority [127.0.0.78]:* ${caPub}`;
  });

  it('OpenSSH itself accepts the host through the CA alone (the setup is right)', async () => {
    writeFileSync(join(dir, 'kh_ca'), `${caLine}\n`);
    const { stdout } = await execFileAsync('ssh', [
      '-F', '/dev/null', '-o', 'BatchMode=yes', '-o', 'StrictHostKeyChecking=yes', '-o', `UserKnownHostsFile=${join(dir, 'kh_ca')}`,
      '-i', certified.clientKeyPath, '-p', String(certified.port), `${certified.user}@127.0.0.78`, 'echo via-ca',
    ]);
    expect(stdout.trim()).toBe('via-ca');
  });

  it('our verifier accepts the certificate sshd serves, for its address and port', () => {
    const certBlob = Buffer.from(readFileSync(join(dir, 'ssh_host_ed25519_key-cert.pub'), 'utf8').split(' ')[1] ?? '', 'base64');
    expect(checkHostKey(parseKnownHosts(caLine), '127.0.0.78', certified.port, certBlob).status).toBe('trusted');
  });

  it('ssh2 cannot negotiate certificate host keys: sshgate refuses with HOST_KEY_UNKNOWN and says why', async () => {
    const fh = await startHarness({ hosts: { certified: { sshd: certified } } });
    try {
      writeFileSync(fh.knownHostsPath, `${caLine}\n`);
      const e = await fh.err('ssh_ping_host', { host: 'certified' });
      expect(e.code).toBe('HOST_KEY_UNKNOWN');
      expect(e.message).toMatch(/@cert-authority.*cannot negotiate certificate host keys/su);
    } finally {
      await fh.close();
    }
  });
});

function writeConfig(doc: unknown): string {
  const dir = mkdtempSync(join(tmpdir(), 'sshgate-cfg-'));
  const path = join(dir, 'config.yaml');
  writeFileSync(path, JSON.stringify(doc));
  return path;
}
