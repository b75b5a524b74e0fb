// Output that does not flood the model: spooled full output, paging and grep, stall timeout, streamed progress.
import { execFileSync } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startSshd, type SshdInstance } from '../../src/testing/sshd.js';
import { startHarness, type Harness } from '../helpers/harness.js';

let sshd: SshdInstance;
let h: Harness;
beforeAll(async () => {
  sshd = await startSshd({ address: '127.0.0.12' });
  h = await startHarness({ hosts: { box: { sshd }, other: { sshd } } });
});
afterAll(async () => {
  await h.close();
  await sshd.stop();
});

const seq = (n: number): string => Array.from({ length: n }, (_, i) => `${i + 1}\n`).join('');

describe('spooled output (ssh_read_output)', () => {
  it('keeps the full output of a truncated command and pages it byte-exactly', async () => {
    const out = await h.ok<{ truncated: boolean; output_id: string; stdout_bytes: number }>('ssh_exec', { host: 'box', command: 'seq 1 300000', max_output_bytes: 4096 });
    expect(out.truncated).toBe(true);
    expect(out.output_id).toMatch(/^out_/u);
    const expected = seq(300000);
    let offset: number | null = 0;
    let text = '';
    while (offset !== null) {
      const page: { content: string; next_offset: number | null; total_bytes: number } = await h.ok('ssh_read_output', { host: 'box', output_id: out.output_id, offset, limit: 1_000_000 });
      text += page.content;
      offset = page.next_offset;
      expect(page.total_bytes).toBe(Buffer.byteLength(expected));
    }
    expect(text).toBe(expected);
  });

  it('greps with context lines, and a small output makes no spool', async () => {
    const out = await h.ok<{ output_id: string }>('ssh_exec', { host: 'box', command: 'seq 1 300000', max_output_bytes: 4096 });
    const found = await h.ok<{ matches: { line: number; text: string; match: boolean }[]; match_count: number }>('ssh_read_output', {
      host: 'box',
      output_id: out.output_id,
      grep: '^15000[0-2]$',
      context: 1,
    });
    expect(found.match_count).toBe(3);
    expect(found.matches.map((m) => [m.line, m.text, m.match])).toEqual([
      [149999, '149999', false],
      [150000, '150000', true],
      [150001, '150001', true],
      [150002, '150002', true],
      [150003, '150003', false],
    ]);
    const small = await h.ok<{ output_id: string | null }>('ssh_exec', { host: 'box', command: 'echo small' });
    expect(small.output_id).toBeNull();
  });

  it('an output id is bound to its host, and an unknown id is refused', async () => {
    const out = await h.ok<{ output_id: string }>('ssh_exec', { host: 'box', command: 'seq 1 100000', max_output_bytes: 2048 });
    expect((await h.err('ssh_read_output', { host: 'other', output_id: out.output_id })).code).toBe('REMOTE_NOT_FOUND');
    expect((await h.err('ssh_read_output', { host: 'box', output_id: 'out_000000000000000000' })).code).toBe('REMOTE_NOT_FOUND');
  });

  it('redacts secrets in spooled output too', async () => {
    const out = await h.ok<{ output_id: string }>('ssh_exec', {
      host: 'box',
      command: 'seq 1 50000; echo password=hunter2-from-spool; seq 1 50000',
      max_output_bytes: 2048,
    });
    const found = await h.ok<{ matches: { text: string }[] }>('ssh_read_output', { host: 'box', output_id: out.output_id, grep: 'password', context: 0 });
    expect(found.matches).toHaveLength(1);
    expect(found.matches[0]?.text).not.toContain('hunter2');
  });
});

describe('stall timeout and progress', () => {
  it('stall_timeout_ms ends a command that prints nothing, and stops it on the host', async () => {
    const marker = `sleep 94.${Date.now() % 100000}`;
    const e = await h.err('ssh_exec', { host: 'box', command: `echo started; ${marker}`, stall_timeout_ms: 700, timeout_ms: 30_000 });
    expect(e.code).toBe('COMMAND_TIMEOUT');
    expect(e.message).toMatch(/stopped on the host/u);
    expect(e.details?.['stdout']).toBe('started\n');
    const left = execFileSync('ps', ['-eo', 'args='], { encoding: 'utf8' }).split('\n').filter((l) => l.includes(marker));
    expect(left).toEqual([]);
  });

  it('streams the newest output line as progress notifications when the client sent a token', async () => {
    const seen: { progress: number; message?: string }[] = [];
    const result = await h.call(
      'ssh_exec',
      { host: 'box', command: 'for i in 1 2 3 4 5 6; do echo "step $i"; sleep 0.3; done' },
      { onprogress: (p) => seen.push(p as { progress: number; message?: string }) },
    );
    expect(result.isError).not.toBe(true);
    expect(seen.length).toBeGreaterThanOrEqual(3);
    expect(seen.map((p) => p.message)).toContain('step 3');
    const progresses = seen.map((p) => p.progress);
    expect([...progresses].sort((a, b) => a - b)).toEqual(progresses);
  });
});
