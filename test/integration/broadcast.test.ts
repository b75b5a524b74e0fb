// ssh_broadcast: per-host policy and results; one host's failure never fails the others; wall time ~ the slowest host.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startSshd, type SshdInstance } from '../../src/testing/sshd.js';
import { startHarness, type Harness } from '../helpers/harness.js';

const sshds: SshdInstance[] = [];
let h: Harness;

interface Result {
  host: string;
  ok: boolean;
  exit_code: number | null;
  stdout: string;
  error: { code: string; message: string } | null;
}

beforeAll(async () => {
  for (const address of ['127.0.0.13', '127.0.0.14', '127.0.0.15']) sshds.push(await startSshd({ address }));
  const [a, b, c] = sshds as [SshdInstance, SshdInstance, SshdInstance];
  h = await startHarness({
    hosts: {
      web1: { sshd: a, config: { labels: ['web'] } },
      web2: { sshd: b, config: { labels: ['web'] } },
      web3: { sshd: c, config: { labels: ['web'], commands: { allow: ['^hostname$'] } } },
      ro: { sshd: a, config: { labels: ['web'], tier: 'read' } },
      dead: { sshd: { ...a, address: '127.0.0.16', port: 1 }, config: { labels: ['web'] } },
    },
    config: { tier: 'exec' },
  });
});
afterAll(async () => {
  await h.close();
  for (const s of sshds) await s.stop();
});

describe('ssh_broadcast', () => {
  it('runs on every host of a label, applying each host\'s own policy; failures stay per host', async () => {
    const out = await h.ok<{ results: Result[]; ok_count: number; failed_count: number }>('ssh_broadcast', { command: 'echo hi', labels: ['web'] });
    const byHost = Object.fromEntries(out.results.map((r) => [r.host, r]));
    expect(byHost['web1']).toMatchObject({ ok: true, exit_code: 0, stdout: 'hi\n', error: null });
    expect(byHost['web2']).toMatchObject({ ok: true, exit_code: 0, stdout: 'hi\n' });
    expect(byHost['web3']?.error?.code).toBe('COMMAND_DENIED');
    expect(byHost['ro']?.error?.code).toBe('POLICY_DENIED');
    expect(byHost['dead']?.error?.code).toBe('CONNECT_FAILED');
    expect([out.ok_count, out.failed_count]).toEqual([2, 3]);
  });

  it('works on the hosts in parallel: every host starts before any finishes', async () => {
    const out = await h.ok<{ results: Result[] }>('ssh_broadcast', { command: 'date +%s%N; sleep 1; date +%s%N', hosts: ['web1', 'web2'] });
    const spans = out.results.map((r) => r.stdout.trim().split('\n').map(BigInt));
    const latestStart = spans.map((s) => s[0] ?? 0n).reduce((a, b) => (a > b ? a : b));
    const earliestEnd = spans.map((s) => s[1] ?? 0n).reduce((a, b) => (a < b ? a : b));
    expect(latestStart < earliestEnd).toBe(true);
  });

  it('reports an unknown alias per host and refuses an empty selection', async () => {
    const out = await h.ok<{ results: Result[] }>('ssh_broadcast', { command: 'true', hosts: ['web1', 'nope'] });
    expect(out.results.map((r) => [r.host, r.ok, r.error?.code ?? null])).toEqual([
      ['web1', true, null],
      ['nope', false, 'HOST_NOT_CONFIGURED'],
    ]);
    expect((await h.err('ssh_broadcast', { command: 'true', labels: ['none'] })).code).toBe('INVALID_INPUT');
  });
});
