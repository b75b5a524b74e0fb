// Upload, download and host-to-host transfers against real OpenSSH sshd processes, through a real MCP client:
// big files, atomicity under faults (killed sshd, cut connections, full disks), resume, cancellation, progress,
// and the local and remote path policies.
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { appendFileSync, chmodSync, closeSync, existsSync, mkdirSync, mkdtempSync, openSync, readFileSync, readSync, readdirSync, rmSync, statSync, symlinkSync, writeFileSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startSshd, type SshdInstance } from '../../src/testing/sshd.js';
import { startProxy, type TcpProxy } from '../helpers/tcp-proxy.js';
import { startHarness, type Harness } from '../helpers/harness.js';
import { waitFor } from '../helpers/wait.js';

const MIB = 1024 * 1024;

/** Writes `mib` MiB of deterministic bytes (an xorshift block, each MiB stamped with its index, so misplaced blocks show) and returns the sha256. */
function writePattern(path: string, mib: number, seed = 0x9e3779b9): string {
  const block = Buffer.alloc(MIB);
  let x = seed >>> 0;
  for (let i = 0; i < MIB; i += 4) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    block.writeUInt32LE(x >>> 0, i);
  }
  const hash = createHash('sha256');
  const fd = openSync(path, 'w');
  try {
    for (let i = 0; i < mib; i += 1) {
      block.writeUInt32LE(i, 0);
      hash.update(block);
      writeSync(fd, block);
    }
  } finally {
    closeSync(fd);
  }
  return hash.digest('hex');
}

function sha256Of(path: string): string {
  const hash = createHash('sha256');
  const buf = Buffer.allocUnsafe(4 * MIB);
  const fd = openSync(path, 'r');
  try {
    for (let n = readSync(fd, buf); n > 0; n = readSync(fd, buf)) hash.update(buf.subarray(0, n));
  } finally {
    closeSync(fd);
  }
  return hash.digest('hex');
}

const sha256Text = (text: string): string => createHash('sha256').update(text).digest('hex');

/** Temp and partial files sshgate leaves beside a destination while it writes. */
const leftovers = (dir: string): string[] => readdirSync(dir).filter((n) => n.includes('.sshgate-'));

interface TransferOut {
  source: string;
  destination: string;
  files: { source: string; destination: string; bytes: number; sha256: string; resumed_from: number; verified: string; streamed: boolean }[];
  file_count: number;
  skipped: { path: string; reason: string }[];
  sha256: string | null;
  bytes: number;
  bytes_transferred: number;
}

type ErrorView = { code: string; message: string; details?: Record<string, unknown> };

function errorOf(result: { isError?: boolean | undefined; structuredContent?: unknown }): ErrorView {
  expect(result.isError).toBe(true);
  return (result.structuredContent as { error: ErrorView }).error;
}

let sshd: SshdInstance;
let h: Harness;
let local: string;
let remote: string;
let outside: string;
/** 256 MiB test file and its sha256, shared by the big tests. */
let big: string;
let bigSha: string;

beforeAll(async () => {
  sshd = await startSshd({ address: '127.0.0.30' });
  local = mkdtempSync(join(tmpdir(), 'sshgate-xfer-local-'));
  remote = mkdtempSync(join(tmpdir(), 'sshgate-xfer-remote-'));
  outside = mkdtempSync(join(tmpdir(), 'sshgate-xfer-outside-'));
  big = join(local, 'big.bin');
  bigSha = writePattern(big, 256);
  h = await startHarness({
    hosts: {
      web: { sshd, config: { roots: [remote] } },
      noexec: { sshd, config: { roots: [remote], allow_execute: false } },
      allowlisted: { sshd, config: { roots: [remote], commands: { allow: ['^ls( .*)?$'] } } },
      reader: { sshd, config: { roots: [remote], tier: 'read' } },
      anywhere: { sshd },
      guarded: { sshd, config: { roots: [remote], restricted_paths: [join(remote, 'rtree', 'secret.env')] } },
    },
    config: { tier: 'write', local_paths: [local], transfers: { max_entries: 20 } },
  });
}, 120_000);

afterAll(async () => {
  await h.close();
  await sshd.stop();
  for (const dir of [local, remote, outside]) rmSync(dir, { recursive: true, force: true });
});

describe('ssh_upload_file and ssh_download_file', () => {
  it('a 256 MiB file goes up and comes back with the same sha256, through temp files that are gone afterwards', { timeout: 300_000 }, async () => {
    const up = await h.ok<TransferOut>('ssh_upload_file', { host: 'web', local_path: big, remote_path: join(remote, 'big.bin') });
    expect(up.sha256).toBe(bigSha);
    expect(up.bytes).toBe(256 * MIB);
    expect(up.files[0]?.verified).toBe('size');
    expect(sha256Of(join(remote, 'big.bin'))).toBe(bigSha);

    const down = await h.ok<TransferOut>('ssh_download_file', { host: 'web', remote_path: join(remote, 'big.bin'), local_path: join(local, 'big-back.bin'), verify_sha256: true });
    expect(down.sha256).toBe(bigSha);
    expect(down.files[0]?.streamed).toBe(true);
    expect(down.files[0]?.verified).toBe('size+sha256');
    expect(sha256Of(join(local, 'big-back.bin'))).toBe(bigSha);
    expect(leftovers(remote)).toEqual([]);
    expect(leftovers(local)).toEqual([]);
    rmSync(join(remote, 'big.bin'));
    rmSync(join(local, 'big-back.bin'));
  });

  it('a host that may run commands sends a download as one stream; without allow_execute or with a commands.allow list, SFTP reads; same bytes', { timeout: 120_000 }, async () => {
    const sha = writePattern(join(remote, 'stream.bin'), 24);
    for (const [host, streamed] of [['web', true], ['noexec', false], ['allowlisted', false]] as const) {
      const dest = join(local, `stream-${host}.bin`);
      const out = await h.ok<TransferOut>('ssh_download_file', { host, remote_path: join(remote, 'stream.bin'), local_path: dest });
      expect([host, out.files[0]?.streamed, out.sha256]).toEqual([host, streamed, sha]);
      expect(sha256Of(dest)).toBe(sha);
      rmSync(dest);
    }
    // Resuming a stream starts at the kept offset (tail -c +N): a partial file of the first 8 MiB is kept.
    const dest = join(local, 'stream-resume.bin');
    writeFileSync(join(local, '.stream-resume.bin.sshgate-partial'), readFileSync(join(remote, 'stream.bin')).subarray(0, 8 * MIB + 123));
    const resumed = await h.ok<TransferOut>('ssh_download_file', { host: 'web', remote_path: join(remote, 'stream.bin'), local_path: dest, resume: true });
    expect(resumed.files[0]).toMatchObject({ streamed: true, sha256: sha });
    expect(resumed.files[0]?.resumed_from).toBeGreaterThan(0);
    expect(sha256Of(dest)).toBe(sha);
    expect(leftovers(local)).toEqual([]);
    rmSync(dest);
    rmSync(join(remote, 'stream.bin'));
  });

  it('a shell start-up file that prints (BASH_ENV) does not end up in a streamed download', { timeout: 120_000 }, async () => {
    const noisyDir = mkdtempSync(join(tmpdir(), 'sshgate-noisy-'));
    writeFileSync(join(noisyDir, 'noisy.sh'), 'echo "Welcome to the noisy host"\n');
    // internal-sftp runs SFTP inside sshd, past the shell: only commands see the greeting (an external sftp-server
    // started through the shell would be broken by it, as OpenSSH's own sftp is).
    const noisy = await startSshd({ address: '127.0.0.34', extraConfig: [`SetEnv SHLVL=1 BASH_ENV=${join(noisyDir, 'noisy.sh')}`, 'Subsystem sftp internal-sftp'] });
    const nh = await startHarness({ hosts: { noisy: { sshd: noisy, config: { roots: [remote] } } }, config: { tier: 'exec', local_paths: [local] } });
    try {
      // Positive control: the greeting does reach a command's output on this host.
      const control = await nh.ok<{ stdout: string }>('ssh_exec', { host: 'noisy', command: 'true' });
      expect(control.stdout).toContain('Welcome to the noisy host');
      const sha = writePattern(join(remote, 'noisy.bin'), 6);
      const dest = join(local, 'noisy.bin');
      const out = await nh.ok<TransferOut>('ssh_download_file', { host: 'noisy', remote_path: join(remote, 'noisy.bin'), local_path: dest });
      expect(out.files[0]).toMatchObject({ streamed: true, sha256: sha, bytes: 6 * MIB });
      expect(sha256Of(dest)).toBe(sha);
      rmSync(dest);
      rmSync(join(remote, 'noisy.bin'));
    } finally {
      await nh.close();
      await noisy.stop();
      rmSync(noisyDir, { recursive: true, force: true });
    }
  });

  it('progress notifications arrive when the client sends a progress token, rising to the total', { timeout: 120_000 }, async () => {
    const src = join(local, 'progress.bin');
    writePattern(src, 48);
    const seen: { progress: number; total?: number }[] = [];
    const result = await h.call('ssh_upload_file', { host: 'web', local_path: src, remote_path: join(remote, 'progress.bin') }, { onprogress: (p) => seen.push(p as { progress: number; total?: number }) });
    expect(result.isError).not.toBe(true);
    expect(seen.length).toBeGreaterThanOrEqual(2);
    for (let i = 1; i < seen.length; i += 1) expect(seen[i]?.progress ?? 0).toBeGreaterThanOrEqual(seen[i - 1]?.progress ?? 0);
    expect(seen.at(-1)).toMatchObject({ progress: 48 * MIB, total: 48 * MIB });
  });

  it('overwrite false refuses an existing destination (both ways) and leaves it untouched; overwrite true replaces it and keeps its mode', async () => {
    writeFileSync(join(local, 'new.txt'), 'new content\n');
    writeFileSync(join(remote, 'old.txt'), 'old content\n');
    chmodSync(join(remote, 'old.txt'), 0o640);
    const refusedUp = await h.err('ssh_upload_file', { host: 'web', local_path: join(local, 'new.txt'), remote_path: join(remote, 'old.txt') });
    expect(refusedUp.code).toBe('ALREADY_EXISTS');
    expect(refusedUp.message).toMatch(/overwrite: true/u);
    expect(readFileSync(join(remote, 'old.txt'), 'utf8')).toBe('old content\n');

    writeFileSync(join(local, 'kept.txt'), 'local stays\n');
    const refusedDown = await h.err('ssh_download_file', { host: 'web', remote_path: join(remote, 'old.txt'), local_path: join(local, 'kept.txt') });
    expect(refusedDown.code).toBe('ALREADY_EXISTS');
    expect(readFileSync(join(local, 'kept.txt'), 'utf8')).toBe('local stays\n');

    const replaced = await h.ok<TransferOut>('ssh_upload_file', { host: 'web', local_path: join(local, 'new.txt'), remote_path: join(remote, 'old.txt'), overwrite: true });
    expect(replaced.sha256).toBe(sha256Text('new content\n'));
    expect(replaced.files[0]?.verified).toBe('size+sha256');
    expect(readFileSync(join(remote, 'old.txt'), 'utf8')).toBe('new content\n');
    expect(statSync(join(remote, 'old.txt')).mode & 0o777).toBe(0o640);
    expect(leftovers(remote)).toEqual([]);
  });

  it('an existing directory as destination receives the file under its own name', async () => {
    writeFileSync(join(local, 'into-dir.txt'), 'x\n');
    mkdirSync(join(remote, 'dir-dest'));
    const out = await h.ok<TransferOut>('ssh_upload_file', { host: 'web', local_path: join(local, 'into-dir.txt'), remote_path: join(remote, 'dir-dest') });
    expect(out.destination).toBe(join(remote, 'dir-dest', 'into-dir.txt'));
    expect(readFileSync(join(remote, 'dir-dest', 'into-dir.txt'), 'utf8')).toBe('x\n');
  });

  it('a local path outside local_paths is refused before anything is read or written', async () => {
    writeFileSync(join(outside, 'secret.txt'), 'secret\n');
    const up = await h.err('ssh_upload_file', { host: 'web', local_path: join(outside, 'secret.txt'), remote_path: join(remote, 'stolen.txt') });
    expect(up.code).toBe('PATH_DENIED');
    expect(up.message).toMatch(/local_paths/u);
    expect(existsSync(join(remote, 'stolen.txt'))).toBe(false);

    writeFileSync(join(remote, 'payload.txt'), 'payload\n');
    const down = await h.err('ssh_download_file', { host: 'web', remote_path: join(remote, 'payload.txt'), local_path: join(outside, 'dropped.txt') });
    expect(down.code).toBe('PATH_DENIED');
    expect(existsSync(join(outside, 'dropped.txt'))).toBe(false);

    const dotdot = await h.err('ssh_upload_file', { host: 'web', local_path: `${local}/../${outside.split('/').at(-1) ?? ''}/secret.txt`, remote_path: join(remote, 'stolen.txt') });
    expect(dotdot.code).toBe('PATH_DENIED');
  });

  it('a local symlink leading out of local_paths is refused: as source, as destination file, and as a directory on the way', async () => {
    writeFileSync(join(outside, 'target.txt'), 'outside\n');
    symlinkSync(join(outside, 'target.txt'), join(local, 'link-out.txt'));
    symlinkSync(outside, join(local, 'dir-out'));
    writeFileSync(join(remote, 'payload2.txt'), 'payload\n');

    const asSource = await h.err('ssh_upload_file', { host: 'web', local_path: join(local, 'link-out.txt'), remote_path: join(remote, 'leak.txt') });
    expect(asSource.code).toBe('PATH_DENIED');
    expect(asSource.message).toMatch(/resolves to/u);
    expect(existsSync(join(remote, 'leak.txt'))).toBe(false);

    const asDestination = await h.err('ssh_download_file', { host: 'web', remote_path: join(remote, 'payload2.txt'), local_path: join(local, 'link-out.txt'), overwrite: true });
    expect(asDestination.code).toBe('PATH_DENIED');
    expect(readFileSync(join(outside, 'target.txt'), 'utf8')).toBe('outside\n');

    const throughDir = await h.err('ssh_download_file', { host: 'web', remote_path: join(remote, 'payload2.txt'), local_path: join(local, 'dir-out', 'planted.txt') });
    expect(throughDir.code).toBe('PATH_DENIED');
    expect(existsSync(join(outside, 'planted.txt'))).toBe(false);
  });

  it('a remote symlink leading out of the roots is refused both ways', async () => {
    symlinkSync('/etc', join(remote, 'etc-link'));
    const down = await h.err('ssh_download_file', { host: 'web', remote_path: join(remote, 'etc-link', 'hostname'), local_path: join(local, 'hostname') });
    expect(down.code).toBe('PATH_DENIED');
    expect(existsSync(join(local, 'hostname'))).toBe(false);
    writeFileSync(join(local, 'evil.conf'), 'x\n');
    const up = await h.err('ssh_upload_file', { host: 'web', local_path: join(local, 'evil.conf'), remote_path: join(remote, 'etc-link', 'evil.conf') });
    expect(up.code).toBe('PATH_DENIED');
    expect(existsSync('/etc/evil.conf')).toBe(false);
    const lexical = await h.err('ssh_download_file', { host: 'web', remote_path: '/etc/hostname', local_path: join(local, 'hostname') });
    expect(lexical.code).toBe('PATH_DENIED');
  });

  it('a zero-size pseudo-file (/proc/version) is read until end of file, not by its reported size', async () => {
    const out = await h.ok<TransferOut>('ssh_download_file', { host: 'anywhere', remote_path: '/proc/version', local_path: join(local, 'version.txt') });
    const expected = readFileSync('/proc/version');
    expect(out.bytes).toBe(expected.length);
    expect(readFileSync(join(local, 'version.txt'))).toEqual(expected);
  });

  it('a host at tier read allows downloads and refuses uploads', async () => {
    writeFileSync(join(remote, 'readable.txt'), 'r\n');
    const down = await h.ok<TransferOut>('ssh_download_file', { host: 'reader', remote_path: join(remote, 'readable.txt'), local_path: join(local, 'readable.txt') });
    expect(down.sha256).toBe(sha256Text('r\n'));
    const up = await h.err('ssh_upload_file', { host: 'reader', local_path: join(local, 'readable.txt'), remote_path: join(remote, 'nope.txt') });
    expect(up.code).toBe('POLICY_DENIED');
  });

  it('a directory tree goes up and comes down with include/exclude; symlinks are skipped and listed', async () => {
    const tree = join(local, 'tree');
    mkdirSync(join(tree, 'logs', 'old'), { recursive: true });
    mkdirSync(join(tree, 'cache'));
    mkdirSync(join(tree, 'empty'));
    writeFileSync(join(tree, 'app.conf'), 'conf\n');
    writeFileSync(join(tree, 'logs', 'a.log'), 'a\n');
    writeFileSync(join(tree, 'logs', 'old', 'b.log'), 'b\n');
    writeFileSync(join(tree, 'cache', 'big.tmp'), 'tmp\n');
    symlinkSync('/etc/passwd', join(tree, 'passwd-link'));

    const up = await h.ok<TransferOut>('ssh_upload_file', { host: 'web', local_path: tree, remote_path: join(remote, 'tree'), recursive: true, exclude: ['cache'] });
    expect(up.files.map((f) => f.destination.slice(remote.length)).sort()).toEqual(['/tree/app.conf', '/tree/logs/a.log', '/tree/logs/old/b.log']);
    expect(up.skipped).toEqual([{ path: 'passwd-link', reason: 'symlink (not followed)' }]);
    expect(existsSync(join(remote, 'tree', 'empty'))).toBe(true);
    expect(existsSync(join(remote, 'tree', 'cache'))).toBe(false);
    expect(readFileSync(join(remote, 'tree', 'logs', 'old', 'b.log'), 'utf8')).toBe('b\n');

    const down = await h.ok<TransferOut>('ssh_download_file', { host: 'web', remote_path: join(remote, 'tree'), local_path: join(local, 'tree-back'), recursive: true, include: ['*.log'] });
    expect(down.file_count).toBe(2);
    expect(readFileSync(join(local, 'tree-back', 'logs', 'old', 'b.log'), 'utf8')).toBe('b\n');
    expect(existsSync(join(local, 'tree-back', 'app.conf'))).toBe(false);

    const again = await h.err('ssh_upload_file', { host: 'web', local_path: tree, remote_path: join(remote, 'tree'), recursive: true, exclude: ['cache'] });
    expect(again.code).toBe('ALREADY_EXISTS');
    expect(again.details?.['count']).toBe(3);

    const notRecursive = await h.err('ssh_upload_file', { host: 'web', local_path: tree, remote_path: join(remote, 'tree2') });
    expect(notRecursive.code).toBe('INVALID_INPUT');
    expect(notRecursive.message).toMatch(/recursive: true/u);
  });

  it('restricted paths inside a tree are left out and listed, in both directions', async () => {
    mkdirSync(join(remote, 'rtree'));
    writeFileSync(join(remote, 'rtree', 'secret.env'), 'TOKEN=x\n');
    writeFileSync(join(remote, 'rtree', 'app.txt'), 'app\n');
    const down = await h.ok<TransferOut>('ssh_download_file', { host: 'guarded', remote_path: join(remote, 'rtree'), local_path: join(local, 'rtree'), recursive: true });
    expect(down.files.map((f) => f.destination)).toEqual([join(local, 'rtree', 'app.txt')]);
    expect(down.skipped).toEqual([{ path: 'secret.env', reason: expect.stringMatching(/path rules of host guarded/u) as unknown }]);
    expect(existsSync(join(local, 'rtree', 'secret.env'))).toBe(false);

    writeFileSync(join(local, 'rtree', 'secret.env'), 'TOKEN=overwritten\n');
    const up = await h.ok<TransferOut>('ssh_upload_file', { host: 'guarded', local_path: join(local, 'rtree'), remote_path: join(remote, 'rtree'), recursive: true, overwrite: true });
    expect(up.skipped.map((e) => e.path)).toEqual(['secret.env']);
    expect(readFileSync(join(remote, 'rtree', 'secret.env'), 'utf8')).toBe('TOKEN=x\n');
  });

  it('an empty file is copied (and verified) like any other', async () => {
    writeFileSync(join(local, 'empty.txt'), '');
    const out = await h.ok<TransferOut>('ssh_upload_file', { host: 'web', local_path: join(local, 'empty.txt'), remote_path: join(remote, 'empty.txt') });
    expect(out).toMatchObject({ bytes: 0, sha256: sha256Text('') });
    expect(out.files[0]?.verified).toBe('size+sha256');
    expect(statSync(join(remote, 'empty.txt')).size).toBe(0);
  });

  it('a tree with more files than transfers.max_entries is refused with the cap, before anything is copied', async () => {
    const wide = join(local, 'wide');
    mkdirSync(wide);
    for (let i = 0; i < 25; i += 1) writeFileSync(join(wide, `f${i}.txt`), `${i}\n`);
    const refused = await h.err('ssh_upload_file', { host: 'web', local_path: wide, remote_path: join(remote, 'wide'), recursive: true });
    expect(refused.code).toBe('INVALID_INPUT');
    expect(refused.message).toMatch(/more than 20 files \(transfers\.max_entries\)/u);
    expect(existsSync(join(remote, 'wide'))).toBe(false);
  });

  it('two resumable uploads to one destination: the second is refused instead of writing into the same partial file', { timeout: 120_000 }, async () => {
    const target = join(remote, 'contended.bin');
    const args = { host: 'web', local_path: big, remote_path: target, resume: true, overwrite: true };
    const results = await Promise.all([h.call('ssh_upload_file', args), h.call('ssh_upload_file', args)]);
    const refused = results.filter((r) => r.isError === true).map(errorOf);
    expect(refused).toHaveLength(1);
    expect(refused[0]?.code).toBe('RATE_LIMITED');
    expect(refused[0]?.message).toMatch(/another resumable transfer to .*contended\.bin .* is running/u);
    expect(sha256Of(target)).toBe(bigSha);
    expect(leftovers(remote)).toEqual([]);
    rmSync(target);
  });

  it('cancellation removes the temp file, on the host (upload) and on this machine (download)', { timeout: 120_000 }, async () => {
    for (const resume of [false, true]) {
      const controller = new AbortController();
      const pending = h.call('ssh_upload_file', { host: 'web', local_path: big, remote_path: join(remote, `cancel-${resume}.bin`), resume }, {
        signal: controller.signal,
        onprogress: (p) => {
          if ((p as { progress: number }).progress > 16 * MIB) controller.abort();
        },
      });
      await expect(pending).rejects.toThrow();
      expect(await waitFor(() => leftovers(remote).length === 0, 10_000)).toBe(true);
      expect(existsSync(join(remote, `cancel-${resume}.bin`))).toBe(false);
    }
    writeFileSync(join(remote, 'to-cancel.bin'), readFileSync(big));
    const controller = new AbortController();
    const pending = h.call('ssh_download_file', { host: 'web', remote_path: join(remote, 'to-cancel.bin'), local_path: join(local, 'cancelled.bin'), resume: true }, {
      signal: controller.signal,
      onprogress: (p) => {
        if ((p as { progress: number }).progress > 16 * MIB) controller.abort();
      },
    });
    await expect(pending).rejects.toThrow();
    expect(await waitFor(() => leftovers(local).length === 0, 10_000)).toBe(true);
    expect(existsSync(join(local, 'cancelled.bin'))).toBe(false);
    rmSync(join(remote, 'to-cancel.bin'));
    // The server is still there and serves the next call.
    await h.ok('ssh_list_hosts');
  });
});

// Mounting a small tmpfs needs root; elsewhere these two tests are skipped, and the name says why.
const isRoot = process.getuid?.() === 0;
describe.skipIf(!isRoot)(`full disks${isRoot ? '' : ' (skipped: mounting a tmpfs needs root)'}`, () => {
  let remoteFs: string;
  let localFs: string;
  beforeAll(() => {
    remoteFs = join(remote, 'small-fs');
    localFs = join(local, 'small-fs');
    for (const dir of [remoteFs, localFs]) {
      mkdirSync(dir);
      execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=4m', 'tmpfs', dir]);
    }
  });
  afterAll(() => {
    for (const dir of [remoteFs, localFs]) execFileSync('umount', [dir]);
  });

  it('a full remote disk fails the upload loudly and leaves the old file intact, with no temp file behind', { timeout: 60_000 }, async () => {
    writeFileSync(join(remoteFs, 'data.bin'), 'old\n');
    const src = join(local, 'eight.bin');
    writePattern(src, 8);
    const err = await h.err('ssh_upload_file', { host: 'web', local_path: src, remote_path: join(remoteFs, 'data.bin'), overwrite: true });
    expect(err.code).toBe('REMOTE_FAILURE');
    expect(readFileSync(join(remoteFs, 'data.bin'), 'utf8')).toBe('old\n');
    expect(leftovers(remoteFs)).toEqual([]);
  });

  it('a full local disk fails the download loudly and leaves the old file intact, with no temp file behind', { timeout: 60_000 }, async () => {
    writeFileSync(join(localFs, 'data.bin'), 'old\n');
    writePattern(join(remote, 'eight-remote.bin'), 8);
    const err = await h.err('ssh_download_file', { host: 'web', remote_path: join(remote, 'eight-remote.bin'), local_path: join(localFs, 'data.bin'), overwrite: true });
    expect(err.code).toBe('LOCAL_FAILURE');
    expect(err.message).toMatch(/no space left/u);
    expect(readFileSync(join(localFs, 'data.bin'), 'utf8')).toBe('old\n');
    expect(leftovers(localFs)).toEqual([]);
  });
});

describe('faults and resume', () => {
  it('sshd killed mid-upload: CONNECTION_LOST, no destination, and the server keeps serving', { timeout: 180_000 }, async () => {
    const victim = await startSshd({ address: '127.0.0.32' });
    const fh = await startHarness({ hosts: { victim: { sshd: victim, config: { roots: [remote] } } }, config: { tier: 'write', local_paths: [local] } });
    try {
      const killed: { done: Promise<void> | null } = { done: null };
      const result = await fh.call('ssh_upload_file', { host: 'victim', local_path: big, remote_path: join(remote, 'killed.bin') }, {
        onprogress: (p) => {
          if (killed.done === null && (p as { progress: number }).progress > 32 * MIB) killed.done = victim.kill();
        },
      });
      expect(killed.done).not.toBeNull();
      await killed.done;
      const error = errorOf(result);
      expect(error.code).toBe('CONNECTION_LOST');
      expect(existsSync(join(remote, 'killed.bin'))).toBe(false);
      // The process survived (an unhandled 'error' event would have failed this file) and serves the next call.
      const hosts = await fh.ok<{ hosts: unknown[] }>('ssh_list_hosts');
      expect(hosts.hosts).toHaveLength(1);
    } finally {
      await fh.close();
      await victim.stop();
      for (const name of leftovers(remote)) rmSync(join(remote, name));
    }
  });

  describe('through a TCP proxy that cuts the connection', () => {
    let proxy: TcpProxy;
    let ph: Harness;
    beforeAll(async () => {
      proxy = await startProxy({ target: { host: sshd.address, port: sshd.port }, listen: { host: '127.0.0.33' } });
      const via = { hostname: proxy.host, port: proxy.port, roots: [remote] };
      ph = await startHarness({
        hosts: { cut: { sshd, config: via }, cutnoexec: { sshd, config: { ...via, allow_execute: false } } },
        config: { tier: 'write', local_paths: [local] },
      });
      appendFileSync(ph.knownHostsPath, `[${proxy.host}]:${proxy.port} ${sshd.hostPublicKey}\n`);
    });
    afterAll(async () => {
      await ph.close();
      await proxy.close();
    });

    it('a download cut mid-way keeps the partial file and resumes from its verified prefix', { timeout: 300_000 }, async () => {
      writeFileSync(join(remote, 'resume-down.bin'), readFileSync(big));
      const dest = join(local, 'resumed-down.bin');
      proxy.cutAfter(96 * MIB);
      const first = await ph.call('ssh_download_file', { host: 'cut', remote_path: join(remote, 'resume-down.bin'), local_path: dest, resume: true });
      const error = errorOf(first);
      expect(error.code).toBe('CONNECTION_LOST');
      expect(error.details?.['partial_path']).toBe(join(local, '.resumed-down.bin.sshgate-partial'));
      const kept = statSync(join(local, '.resumed-down.bin.sshgate-partial')).size;
      expect(kept).toBeGreaterThan(32 * MIB);
      expect(existsSync(dest)).toBe(false);

      proxy.cutAfter(Number.POSITIVE_INFINITY);
      const second = await ph.ok<TransferOut>('ssh_download_file', { host: 'cut', remote_path: join(remote, 'resume-down.bin'), local_path: dest, resume: true });
      expect(second.files[0]?.resumed_from).toBeGreaterThan(16 * MIB);
      expect(second.bytes_transferred).toBe(256 * MIB - (second.files[0]?.resumed_from ?? 0));
      expect(second.sha256).toBe(bigSha);
      expect(second.files[0]?.verified).toBe('size+sha256');
      expect(sha256Of(dest)).toBe(bigSha);
      expect(leftovers(local)).toEqual([]);
      rmSync(dest);
      rmSync(join(remote, 'resume-down.bin'));
    });

    it('an upload cut mid-way resumes too, verifying the partial file over SFTP when the host allows no commands', { timeout: 300_000 }, async () => {
      const dest = join(remote, 'resumed-up.bin');
      let cut = false;
      const first = await ph.call('ssh_upload_file', { host: 'cutnoexec', local_path: big, remote_path: dest, resume: true }, {
        onprogress: (p) => {
          if (!cut && (p as { progress: number }).progress > 64 * MIB) {
            cut = true;
            proxy.resetAll();
          }
        },
      });
      expect(errorOf(first).code).toBe('CONNECTION_LOST');
      expect(existsSync(dest)).toBe(false);
      expect(await waitFor(() => existsSync(join(remote, '.resumed-up.bin.sshgate-partial')), 10_000)).toBe(true);

      const second = await ph.ok<TransferOut>('ssh_upload_file', { host: 'cutnoexec', local_path: big, remote_path: dest, resume: true });
      expect(second.files[0]?.resumed_from).toBeGreaterThan(16 * MIB);
      expect(second.sha256).toBe(bigSha);
      expect(sha256Of(dest)).toBe(bigSha);
      expect(leftovers(remote)).toEqual([]);
      rmSync(dest);
    });

    it('a partial file that does not match the source is not trusted: the copy starts over', { timeout: 120_000 }, async () => {
      const src = join(local, 'mismatch.bin');
      const sha = writePattern(src, 16, 1);
      writePattern(join(remote, '.mismatch.bin.sshgate-partial'), 12, 2);
      const out = await ph.ok<TransferOut>('ssh_upload_file', { host: 'cut', local_path: src, remote_path: join(remote, 'mismatch.bin'), resume: true });
      expect(out.files[0]?.resumed_from).toBe(0);
      expect(sha256Of(join(remote, 'mismatch.bin'))).toBe(sha);
    });
  });
});

describe('ssh_transfer_file', () => {
  let other: SshdInstance;
  let remote2: string;
  let th: Harness;
  beforeAll(async () => {
    other = await startSshd({ address: '127.0.0.31' });
    remote2 = mkdtempSync(join(tmpdir(), 'sshgate-xfer-remote2-'));
    th = await startHarness({
      hosts: {
        src: { sshd, config: { roots: [remote] } },
        dst: { sshd: other, config: { roots: [remote2] } },
        dstread: { sshd: other, config: { roots: [remote2], tier: 'read' } },
        dstnowrite: { sshd: other, config: { roots: [remote2], allow_sftp_write: false } },
        dstapproval: { sshd: other, config: { roots: [remote2], approval: ['write'] } },
        dstone: { sshd: other, config: { roots: [remote2], rate: { concurrency: 1 } } },
      },
      config: { tier: 'write' },
    });
  });
  afterAll(async () => {
    await th.close();
    await other.stop();
    rmSync(remote2, { recursive: true, force: true });
  });

  it('copies a 64 MiB file from one host to another with the same sha256, atomically', { timeout: 180_000 }, async () => {
    const sha = writePattern(join(remote, 'h2h.bin'), 64);
    const out = await th.ok<TransferOut & { source_host: string; destination_host: string }>('ssh_transfer_file', {
      source_host: 'src',
      source_path: join(remote, 'h2h.bin'),
      destination_host: 'dst',
      destination_path: join(remote2, 'h2h.bin'),
    });
    expect(out).toMatchObject({ source_host: 'src', destination_host: 'dst', sha256: sha, bytes: 64 * MIB });
    expect(sha256Of(join(remote2, 'h2h.bin'))).toBe(sha);
    expect(leftovers(remote2)).toEqual([]);
    const again = await th.err('ssh_transfer_file', { source_host: 'src', source_path: join(remote, 'h2h.bin'), destination_host: 'dst', destination_path: join(remote2, 'h2h.bin') });
    expect(again.code).toBe('ALREADY_EXISTS');
  });

  it('holds a rate slot on each host while it runs: a call to a concurrency-1 destination meanwhile is RATE_LIMITED', { timeout: 180_000 }, async () => {
    // 256 MiB: the copy lasts about a second, well past the first progress notification (every 200 ms).
    const sha = writePattern(join(remote, 'slot.bin'), 256);
    let during: Promise<{ code: string; message: string }> | null = null;
    const out = await th.call(
      'ssh_transfer_file',
      { source_host: 'src', source_path: join(remote, 'slot.bin'), destination_host: 'dstone', destination_path: join(remote2, 'slot.bin') },
      {
        onprogress: (p) => {
          if (during === null && (p as { progress: number }).progress > 8 * MIB) during = th.err('ssh_get_file_info', { host: 'dstone', path: remote2 });
        },
      },
    );
    expect(out.isError).not.toBe(true);
    expect(during).not.toBeNull();
    const refused = await (during as unknown as Promise<{ code: string; message: string }>);
    expect(refused.code).toBe('RATE_LIMITED');
    expect(sha256Of(join(remote2, 'slot.bin'))).toBe(sha);
    // The slot was given back when the transfer ended.
    expect((await th.ok<{ type: string }>('ssh_get_file_info', { host: 'dstone', path: remote2 })).type).toBe('directory');
    rmSync(join(remote2, 'slot.bin'));
    rmSync(join(remote, 'slot.bin'));
  });

  it('without local_paths in the config, no upload or download is possible', async () => {
    writeFileSync(join(remote, 'nolocal.txt'), 'n\n');
    const err = await th.err('ssh_download_file', { host: 'src', remote_path: join(remote, 'nolocal.txt'), local_path: join(local, 'nolocal.txt') });
    expect(err.code).toBe('PATH_DENIED');
    expect(err.message).toMatch(/local_paths/u);
    expect(existsSync(join(local, 'nolocal.txt'))).toBe(false);
  });

  it('each end is checked under its own host\'s policy, and a refusal is audited as a denial', async () => {
    writeFileSync(join(remote, 'policy.txt'), 'p\n');
    const args = { source_host: 'src', source_path: join(remote, 'policy.txt') };
    const tier = await th.err('ssh_transfer_file', { ...args, destination_host: 'dstread', destination_path: join(remote2, 'p1.txt') });
    expect(tier.code).toBe('POLICY_DENIED');
    expect(tier.message).toMatch(/allows at most read/u);
    const toggle = await th.err('ssh_transfer_file', { ...args, destination_host: 'dstnowrite', destination_path: join(remote2, 'p2.txt') });
    expect(toggle.code).toBe('POLICY_DENIED');
    expect(toggle.message).toMatch(/allow_sftp_write/u);
    const roots = await th.err('ssh_transfer_file', { ...args, destination_host: 'dst', destination_path: '/etc/p3.txt' });
    expect(roots.code).toBe('PATH_DENIED');
    const sourceRoots = await th.err('ssh_transfer_file', { source_host: 'src', source_path: '/etc/passwd', destination_host: 'dst', destination_path: join(remote2, 'passwd') });
    expect(sourceRoots.code).toBe('PATH_DENIED');
    const unknown = await th.err('ssh_transfer_file', { ...args, destination_host: 'nowhere', destination_path: join(remote2, 'p4.txt') });
    expect(unknown.code).toBe('HOST_NOT_CONFIGURED');
    const approval = await th.err('ssh_transfer_file', { ...args, destination_host: 'dstapproval', destination_path: join(remote2, 'p5.txt') });
    expect(approval.code).toBe('POLICY_DENIED');
    expect(approval.message).toMatch(/approval/u);
    expect(readdirSync(remote2).filter((n) => n.startsWith('p'))).toEqual([]);
    const records = (await th.auditLines()).filter((r) => r['tool'] === 'ssh_transfer_file').slice(-6);
    expect(records.map((r) => [r['decision'], r['result']])).toEqual([
      ['denied', 'POLICY_DENIED'],
      ['denied', 'POLICY_DENIED'],
      ['denied', 'PATH_DENIED'],
      ['denied', 'PATH_DENIED'],
      ['denied', 'HOST_NOT_CONFIGURED'],
      ['denied', 'POLICY_DENIED'],
    ]);
  });
});
