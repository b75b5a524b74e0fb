import { mkdtempSync, writeFileSync, readFileSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { startSshd, type SshdInstance } from '../../src/testing/sshd.js';
import { startHarness, type Harness } from '../helpers/harness.js';

let sshd: SshdInstance;
let h: Harness;
let local: string;
let remote: string;
beforeAll(async () => {
  sshd = await startSshd({ address: '127.0.0.39' });
  local = mkdtempSync(join(tmpdir(), 'sg-local-'));
  remote = mkdtempSync(join(tmpdir(), 'sg-remote-'));
  h = await startHarness({ hosts: { h1: { sshd, config: { roots: [remote] } } }, config: { tier: 'write', local_paths: [local] } });
});
afterAll(async () => {
  await h.close();
  await sshd.stop();
});
it('smoke', async () => {
  writeFileSync(join(local, 'a.txt'), 'hello\n');
  const up = await h.call('ssh_upload_file', { host: 'h1', local_path: join(local, 'a.txt'), remote_path: join(remote, 'b.txt') });
  console.log(JSON.stringify(up, null, 1));
  expect(readFileSync(join(remote, 'b.txt'), 'utf8')).toBe('hello\n');
  const down = await h.call('ssh_download_file', { host: 'h1', remote_path: join(remote, 'b.txt'), local_path: join(local, 'c.txt') });
  console.log(JSON.stringify(down.content));
  const again = await h.call('ssh_download_file', { host: 'h1', remote_path: join(remote, 'b.txt'), local_path: join(local, 'c.txt') });
  console.log(JSON.stringify(again.content));
  const big = Buffer.alloc(40 * 1024 * 1024, 7);
  writeFileSync(join(local, 'big.bin'), big);
  const r = await h.call('ssh_upload_file', { host: 'h1', local_path: join(local, 'big.bin'), remote_path: remote }, { onprogress: (p) => console.log('progress', JSON.stringify(p)) });
  console.log(JSON.stringify(r.content));
  console.log(readdirSync(remote));
});
