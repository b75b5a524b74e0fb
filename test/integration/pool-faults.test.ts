// The pool under load and faults, against real sshd processes: MaxSessions, MaxStartups, dead and wedged hosts.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startSshd, type SshdInstance } from '../../src/testing/sshd.js';
import { startTarpit } from '../helpers/tcp-proxy.js';
import { startHarness, type Harness } from '../helpers/harness.js';

let stock: SshdInstance;
let tight: SshdInstance;
let h: Harness;

beforeAll(async () => {
  stock = await startSshd({ address: '127.0.0.3' });
  tight = await startSshd({ address: '127.0.0.4', extraConfig: ['MaxSessions 2'] });
  h = await startHarness({ hosts: { stock: { sshd: stock }, tight: { sshd: tight } } });
});
afterAll(async () => {
  await h.close();
  await stock.stop();
  await tight.stop();
});

describe('pool', () => {
  it('64 concurrent calls to a stock sshd (MaxSessions 10, default MaxStartups) all succeed', async () => {
    const results = await Promise.all(Array.from({ length: 64 }, (_, i) => h.call('ssh_exec', { host: 'stock', command: `echo ${i}` })));
    const failures = results.filter((r) => r.isError === true);
    expect(failures.map((r) => JSON.stringify(r.content))).toEqual([]);
    expect(results.map((r) => (r.structuredContent as { stdout: string }).stdout)).toEqual(Array.from({ length: 64 }, (_, i) => `${i}\n`));
    const stats = h.runtime.pool.stats()['stock'];
    expect(stats?.connections).toBeGreaterThan(1);
    expect(stats?.connections).toBeLessThanOrEqual(6);
  });

  it('a host whose MaxSessions is 2 still serves 20 concurrent calls (the pool learns the lower limit)', async () => {
    const results = await Promise.all(Array.from({ length: 20 }, (_, i) => h.call('ssh_exec', { host: 'tight', command: `echo ${i}` })));
    expect(results.filter((r) => r.isError === true).map((r) => JSON.stringify(r.content))).toEqual([]);
  });

  it('a burst of 60 calls to a fresh host with default MaxStartups loses none', async () => {
    const fresh = await startSshd({ address: '127.0.0.5' });
    const burst = await startHarness({ hosts: { fresh: { sshd: fresh } } });
    try {
      const results = await Promise.all(Array.from({ length: 60 }, () => burst.call('ssh_exec', { host: 'fresh', command: 'true' })));
      expect(results.filter((r) => r.isError === true).map((r) => JSON.stringify(r.content))).toEqual([]);
    } finally {
      await burst.close();
      await fresh.stop();
    }
  });
});

describe('faults', () => {
  it('sshd killed mid-command gives CONNECTION_LOST saying the exit status is unknown, never a success', async () => {
    const victim = await startSshd({ address: '127.0.0.6' });
    const fh = await startHarness({ hosts: { victim: { sshd: victim } } });
    try {
      const pending = fh.call('ssh_exec', { host: 'victim', command: 'echo started; sleep 30; echo done' });
      await new Promise((r) => setTimeout(r, 1000));
      await victim.kill();
      const result = await pending;
      expect(result.isError).toBe(true);
      const error = (result.structuredContent as { error: { code: string; message: string } }).error;
      expect(error.code).toBe('CONNECTION_LOST');
      expect(error.message).toMatch(/exit status is unknown/u);
    } finally {
      await fh.close();
      await victim.stop();
    }
  });

  it('sshd restarted between calls: the stale pooled connection is replaced once and the call succeeds', async () => {
    const victim = await startSshd({ address: '127.0.0.7' });
    const fh = await startHarness({ hosts: { victim: { sshd: victim } } });
    try {
      await fh.ok('ssh_exec', { host: 'victim', command: 'true' });
      await victim.restart();
      const out = await fh.ok<{ stdout: string }>('ssh_exec', { host: 'victim', command: 'echo again' });
      expect(out.stdout).toBe('again\n');
    } finally {
      await fh.close();
      await victim.stop();
    }
  });

  it('a tarpit that accepts and never speaks fails the call at its timeout, once, and does not hang later calls', async () => {
    const tarpit = await startTarpit('127.0.0.8');
    const fh = await startHarness({
      hosts: { pit: { sshd: { ...stock, address: '127.0.0.8', port: tarpit.port } }, stock: { sshd: stock } },
      config: { limits: { timeout_ms: 1500 } },
    });
    try {
      const started = Date.now();
      const e = await fh.err('ssh_ping_host', { host: 'pit' });
      expect(e.code).toBe('CONNECT_TIMEOUT');
      expect(Date.now() - started).toBeLessThan(6000);
      await fh.ok('ssh_ping_host', { host: 'stock' });
    } finally {
      await fh.close();
      await tarpit.close();
    }
  });

  it('a refused port gives CONNECT_FAILED quickly', async () => {
    const fh = await startHarness({ hosts: { closed: { sshd: { ...stock, address: '127.0.0.9', port: 1 } } } });
    try {
      expect((await fh.err('ssh_ping_host', { host: 'closed' })).code).toBe('CONNECT_FAILED');
    } finally {
      await fh.close();
    }
  });
});

describe('output', () => {
  it('50 MB of output stays capped at the per-stream limit with bounded memory', async () => {
    const rssBefore = process.memoryUsage().rss;
    const out = await h.ok<{ stdout: string; truncated: boolean; stdout_bytes: number }>('ssh_exec', {
      host: 'stock',
      command: 'head -c 52428800 /dev/zero | tr "\\0" "x"',
    });
    expect(out.truncated).toBe(true);
    expect(out.stdout_bytes).toBe(52_428_800);
    expect(Buffer.byteLength(out.stdout)).toBeLessThan(1024 * 1024 + 200);
    expect(process.memoryUsage().rss - rssBefore).toBeLessThan(150 * 1024 * 1024);
  });
});
