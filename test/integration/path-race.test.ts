// The race SFTP cannot close (no openat/O_NOFOLLOW): a directory inside the root is swapped for a symlink that
// leads out while writes go on. sshgate re-checks the real paths around every step and removes anything that
// landed outside; the test shows that after 500 writes nothing is left outside the root.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, realpathSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startSshd, type SshdInstance } from '../../src/testing/sshd.js';
import { startHarness, type Harness } from '../helpers/harness.js';

let sshd: SshdInstance;
let h: Harness;
let root: string;
let outside: string;
let swapper: ChildProcess;

beforeAll(async () => {
  sshd = await startSshd({ address: '127.0.0.17' });
  const base = realpathSync(mkdtempSync(join(tmpdir(), 'sshgate-race-')));
  root = join(base, 'root');
  outside = join(base, 'outside');
  mkdirSync(join(root, 'd'), { recursive: true });
  mkdirSync(outside);
  h = await startHarness({ hosts: { box: { sshd, config: { roots: [root] } } } });
  // The attacker on the host: swap root/d between a real directory and a symlink to `outside`, as fast as it can.
  swapper = spawn('bash', ['-c', `cd '${root}' && while :; do mv d d.real; ln -s '${outside}' d; rm -f d; mv d.real d; done`], { stdio: 'ignore' });
});

afterAll(async () => {
  swapper.kill('SIGKILL');
  await h.close();
  await sshd.stop();
});

describe('directory swapped for a symlink during writes', () => {
  it('500 writes leave no file outside the root', async () => {
    const outcomes = new Map<string, number>();
    let next = 0;
    const worker = async (): Promise<void> => {
      while (next < 500) {
        const i = next++;
        const r = await h.call('ssh_write_file', { host: 'box', path: join(root, 'd', `f${i}`), content: `content ${i}` });
        const code = r.isError === true ? (r.structuredContent as { error: { code: string } }).error.code : 'ok';
        outcomes.set(code, (outcomes.get(code) ?? 0) + 1);
      }
    };
    await Promise.all([worker(), worker(), worker(), worker()]);
    swapper.kill('SIGKILL');
    expect([...outcomes.values()].reduce((a, b) => a + b, 0)).toBe(500);
    // Some writes succeed (the loop leaves the real directory in place part of the time) ...
    expect(outcomes.get('ok') ?? 0).toBeGreaterThan(0);
    // ... and none of them, nor any temp file, ends up outside.
    expect(readdirSync(outside)).toEqual([]);
  });
});
