// Every issue-4 part-A file tool against a real OpenSSH sshd (on this machine, so remote paths are local
// paths), through a real MCP client: find, hash, diff, edit, patch, mkdir, remove, copy, move, and the
// write_file extensions, with the confinement and verification rules each one must keep.
import { execFileSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import {
  chmodSync,
  chownSync,
  existsSync,
  lstatSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  readlinkSync,
  rmSync,
  statSync,
  symlinkSync,
  utimesSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createPatch } from 'diff';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startSshd, type SshdInstance } from '../../src/testing/sshd.js';
import { confineForWrite, sftpOps, withSftp, writeAtomicWith } from '../../src/ssh/sftp.js';
import { startHarness, type Harness } from '../helpers/harness.js';

const isRoot = process.getuid?.() === 0;
const sha256 = (data: string | Buffer): string => createHash('sha256').update(data).digest('hex');

let sshd: SshdInstance;
let h: Harness;
/** The root of host web1 (and of web2 under another directory). */
let work: string;
let other: string;
let outside: string;
/** tmpfs mounts made by this file (unmounted in afterAll). */
const mounts: string[] = [];

function mountTmpfs(dir: string, size: string): void {
  mkdirSync(dir, { recursive: true });
  execFileSync('mount', ['-t', 'tmpfs', '-o', `size=${size}`, 'tmpfs', dir]);
  mounts.push(dir);
}

beforeAll(async () => {
  sshd = await startSshd({ address: '127.0.0.21' });
  work = mkdtempSync(join(tmpdir(), 'sshgate-fileops-'));
  other = mkdtempSync(join(tmpdir(), 'sshgate-fileops-other-'));
  outside = mkdtempSync(join(tmpdir(), 'sshgate-fileops-outside-'));
  h = await startHarness({
    hosts: {
      web1: { sshd, config: { roots: [work], restricted_paths: [join(work, 'restricted'), join(work, 'app', '.env')] } },
      web2: { sshd, config: { roots: [other] } },
      noread: { sshd, config: { roots: [other], allow_sftp_read: false } },
      anywhere: { sshd },
    },
    config: { tier: 'exec', limits: { max_remove_entries: 30, max_diff_bytes: 256 * 1024 } },
  });
});

afterAll(async () => {
  await h.close();
  await sshd.stop();
  for (const dir of mounts.reverse()) {
    try {
      execFileSync('umount', [dir]);
    } catch {
      execFileSync('umount', ['-l', dir]);
    }
  }
  for (const dir of [work, other, outside]) rmSync(dir, { recursive: true, force: true });
});

/** A fresh directory under the root of web1. */
function dir(name: string): string {
  const d = join(work, name);
  mkdirSync(d, { recursive: true });
  return d;
}

function tempFiles(d: string): string[] {
  return readdirSync(d).filter((n) => n.includes('.sshgate-') && n.endsWith('.tmp'));
}

interface Found {
  matches: { path: string; type: string; size: number; depth: number; link_target: string | null }[];
  truncated: boolean;
  truncated_reason: string | null;
  skipped: { path: string; reason: string }[];
}

describe('ssh_find_files', () => {
  let tree: string;
  beforeAll(() => {
    tree = dir('find');
    mkdirSync(join(tree, 'a/b/c'), { recursive: true });
    writeFileSync(join(tree, 'top.log'), 'x'.repeat(10));
    writeFileSync(join(tree, 'a/one.log'), 'x'.repeat(2000));
    writeFileSync(join(tree, 'a/b/two.log'), 'x');
    writeFileSync(join(tree, 'a/b/c/three.txt'), 'x');
    writeFileSync(join(tree, 'a/.hidden.log'), 'x');
    utimesSync(join(tree, 'a/one.log'), new Date('2020-01-01T00:00:00Z'), new Date('2020-01-01T00:00:00Z'));
    symlinkSync(outside, join(tree, 'out-link'));
    symlinkSync(join(tree, 'a/b'), join(tree, 'in-link'));
    symlinkSync(tree, join(tree, 'a/loop'));
    writeFileSync(join(outside, 'secret.log'), 'outside');
  });

  it('finds by name glob, depth-first in name order, dotfiles included', async () => {
    const out = await h.ok<Found>('ssh_find_files', { host: 'web1', path: tree, name: '*.log' });
    expect(out.matches.map((m) => m.path.slice(tree.length))).toEqual(['/top.log', '/a/.hidden.log', '/a/one.log', '/a/b/two.log']);
    expect(out.truncated).toBe(false);
  });

  it('filters by type, max_depth, size and modification time', async () => {
    const dirs = await h.ok<Found>('ssh_find_files', { host: 'web1', path: tree, type: 'directory' });
    expect(dirs.matches.map((m) => m.path.slice(tree.length))).toEqual(['/a', '/a/b', '/a/b/c']);
    const shallow = await h.ok<Found>('ssh_find_files', { host: 'web1', path: tree, max_depth: 1 });
    expect(shallow.matches.every((m) => m.depth === 1)).toBe(true);
    expect(shallow.matches.map((m) => m.path.slice(tree.length))).toEqual(['/a', '/in-link', '/out-link', '/top.log']);
    const big = await h.ok<Found>('ssh_find_files', { host: 'web1', path: tree, type: 'file', min_size: 100 });
    expect(big.matches.map((m) => m.path.slice(tree.length))).toEqual(['/a/one.log']);
    const old = await h.ok<Found>('ssh_find_files', { host: 'web1', path: tree, type: 'file', modified_before: '2021-01-01T00:00:00Z' });
    expect(old.matches.map((m) => m.path.slice(tree.length))).toEqual(['/a/one.log']);
    const glob = await h.ok<Found>('ssh_find_files', { host: 'web1', path: tree, name: 'a/**/*.txt' });
    expect(glob.matches.map((m) => m.path.slice(tree.length))).toEqual(['/a/b/c/three.txt']);
  });

  it('stops at limit with truncated: true', async () => {
    const out = await h.ok<Found>('ssh_find_files', { host: 'web1', path: tree, limit: 2 });
    expect(out.matches).toHaveLength(2);
    expect(out.truncated).toBe(true);
    expect(out.truncated_reason).toBe('limit');
  });

  it('reports symlinks without entering them, and never follows one out of the roots', async () => {
    const plain = await h.ok<Found>('ssh_find_files', { host: 'web1', path: tree, name: '*secret*' });
    expect(plain.matches).toEqual([]);
    const followed = await h.ok<Found>('ssh_find_files', { host: 'web1', path: tree, follow_symlinks: true, type: 'file' });
    const paths = followed.matches.map((m) => m.path.slice(tree.length));
    expect(paths).toContain('/in-link/two.log');
    expect(paths.some((p) => p.includes('secret'))).toBe(false);
    expect(followed.skipped.some((s) => s.path.endsWith('/out-link') && s.reason.includes('out of the allowed paths'))).toBe(true);
    // The loop a/loop -> tree is entered at most once per real directory: the walk ends.
    expect(paths.filter((p) => p.endsWith('three.txt')).length).toBeLessThanOrEqual(2);
  });

  it('neither lists nor enters a restricted path', async () => {
    const r = dir('restricted');
    writeFileSync(join(r, 'key.pem'), 'secret');
    const out = await h.ok<Found>('ssh_find_files', { host: 'web1', path: work, name: '*.pem' });
    expect(out.matches).toEqual([]);
    expect(out.skipped.some((s) => s.path === r && s.reason === 'restricted')).toBe(true);
  });

  it('refuses a start outside the roots before anything runs', async () => {
    const e = await h.err('ssh_find_files', { host: 'web1', path: outside });
    expect(e.code).toBe('PATH_DENIED');
  });
});

describe('ssh_hash_file', () => {
  it('the SFTP stream and the remote sha256sum/sha512sum/md5sum agree with each other and with the bytes', async () => {
    const file = join(dir('hash'), 'blob.bin');
    const data = randomBytes(3 * 1024 * 1024 + 17);
    writeFileSync(file, data);
    for (const algorithm of ['sha256', 'sha512', 'md5'] as const) {
      const viaSftp = await h.ok<{ digest: string; method: string; size: number }>('ssh_hash_file', { host: 'web1', path: file, algorithm, method: 'sftp' });
      const viaRemote = await h.ok<{ digest: string; method: string }>('ssh_hash_file', { host: 'web1', path: file, algorithm, method: 'remote' });
      expect(viaSftp.method).toBe('sftp');
      expect(viaRemote.method).toBe('remote');
      expect(viaSftp.digest).toBe(createHash(algorithm).update(data).digest('hex'));
      expect(viaRemote.digest).toBe(viaSftp.digest);
      expect(viaSftp.size).toBe(data.length);
    }
  });

  it('auto hashes a large file on the host and a small one over SFTP', async () => {
    const d = dir('hash-auto');
    const big = randomBytes(16 * 1024 * 1024);
    writeFileSync(join(d, 'big.bin'), big);
    writeFileSync(join(d, "it's small.txt"), 'small');
    const a = await h.ok<{ digest: string; method: string }>('ssh_hash_file', { host: 'web1', path: join(d, 'big.bin') });
    expect(a).toMatchObject({ method: 'remote', digest: sha256(big) });
    const b = await h.ok<{ digest: string; method: string }>('ssh_hash_file', { host: 'web1', path: join(d, "it's small.txt") });
    expect(b).toMatchObject({ method: 'sftp', digest: sha256('small') });
  });

  it('hashes a zero-size /proc file by reading it to its end', async () => {
    const local = readFileSync('/proc/version');
    expect(statSync('/proc/version').size).toBe(0);
    const out = await h.ok<{ digest: string; size: number }>('ssh_hash_file', { host: 'anywhere', path: '/proc/version', method: 'sftp' });
    expect(out.size).toBe(local.length);
    expect(out.digest).toBe(sha256(local));
  });

  it('refuses a path that leaves the roots through a symlink', async () => {
    writeFileSync(join(outside, 'shadow'), 'x');
    symlinkSync(join(outside, 'shadow'), join(dir('hash-link'), 'shadow'));
    expect((await h.err('ssh_hash_file', { host: 'web1', path: join(work, 'hash-link', 'shadow') })).code).toBe('PATH_DENIED');
  });
});

interface DiffOut {
  identical: boolean;
  binary: boolean;
  diff: string;
  additions: number;
  deletions: number;
  other: string;
}

describe('ssh_diff_files', () => {
  let d: string;
  beforeAll(() => {
    d = dir('diff');
    writeFileSync(join(d, 'a.conf'), 'port=80\nhost=a\nmode=x\n');
    writeFileSync(join(d, 'b.conf'), 'port=8080\nhost=a\nmode=x\nextra=1\n');
    writeFileSync(join(d, 'copy.conf'), 'port=80\nhost=a\nmode=x\n');
    writeFileSync(join(d, 'a.bin'), Buffer.from([0, 1, 2, 3]));
    writeFileSync(join(d, 'b.bin'), Buffer.from([0, 1, 2, 4]));
    writeFileSync(join(d, 'big.txt'), 'y\n'.repeat(200 * 1024));
    writeFileSync(join(other, 'a.conf'), 'port=81\nhost=a\nmode=x\n');
  });

  it('diffs two files on one host as a unified diff', async () => {
    const out = await h.ok<DiffOut>('ssh_diff_files', { host: 'web1', path: join(d, 'a.conf'), other_path: join(d, 'b.conf') });
    expect(out.identical).toBe(false);
    expect(out.diff).toContain('-port=80\n+port=8080');
    expect(out.diff).toContain('+extra=1');
    expect([out.additions, out.deletions]).toEqual([2, 1]);
  });

  it('reports identical files with an empty diff, and diffs against given text', async () => {
    expect(await h.ok<DiffOut>('ssh_diff_files', { host: 'web1', path: join(d, 'a.conf'), other_path: join(d, 'copy.conf') })).toMatchObject({ identical: true, diff: '' });
    const text = await h.ok<DiffOut>('ssh_diff_files', { host: 'web1', path: join(d, 'a.conf'), text: 'port=80\nhost=b\nmode=x\n' });
    expect(text.other).toBe('(text)');
    expect(text.diff).toContain('-host=a\n+host=b');
  });

  it('detects binary files instead of diffing them', async () => {
    expect(await h.ok<DiffOut>('ssh_diff_files', { host: 'web1', path: join(d, 'a.bin'), other_path: join(d, 'b.bin') })).toMatchObject({ binary: true, identical: false, diff: '' });
  });

  it('diffs against a file on another host, under that host\'s rules', async () => {
    const out = await h.ok<DiffOut>('ssh_diff_files', { host: 'web1', path: join(d, 'a.conf'), other_host: 'web2', other_path: join(other, 'a.conf') });
    expect(out.other).toBe(`web2:${join(other, 'a.conf')}`);
    expect(out.diff).toContain('+port=81');
    expect((await h.err('ssh_diff_files', { host: 'web1', path: join(d, 'a.conf'), other_host: 'web2', other_path: join(d, 'b.conf') })).code).toBe('PATH_DENIED');
    expect((await h.err('ssh_diff_files', { host: 'web1', path: join(d, 'a.conf'), other_host: 'noread', other_path: join(other, 'a.conf') })).code).toBe('POLICY_DENIED');
    expect((await h.err('ssh_diff_files', { host: 'web1', path: join(d, 'a.conf'), other_host: 'nope', other_path: '/x' })).code).toBe('HOST_NOT_CONFIGURED');
  });

  it('refuses a file over limits.max_diff_bytes, and an other_path outside the roots', async () => {
    const big = await h.err('ssh_diff_files', { host: 'web1', path: join(d, 'big.txt'), text: '' });
    expect(big.code).toBe('INVALID_INPUT');
    expect(big.message).toContain('limits.max_diff_bytes');
    expect((await h.err('ssh_diff_files', { host: 'web1', path: join(d, 'a.conf'), other_path: join(outside, 'x') })).code).toBe('PATH_DENIED');
  });
});

interface RewriteOut {
  written: boolean;
  diff: string;
  sha256: string;
  previous_sha256: string;
  backup_path: string | null;
}

describe('ssh_edit_file', () => {
  it('applies edits in order, returns the diff and the new sha256, keeping mode, owner and group', async () => {
    const file = join(dir('edit'), 'nginx.conf');
    writeFileSync(file, 'listen 80;\nroot /var/www;\n');
    chmodSync(file, 0o640);
    if (isRoot) chownSync(file, 1234, 2345);
    const out = await h.ok<RewriteOut & { replacements: number[] }>('ssh_edit_file', {
      host: 'web1',
      path: file,
      edits: [
        { old_text: 'listen 80;', new_text: 'listen 8080;' },
        { old_text: '/var/www', new_text: '/srv/$&' },
      ],
    });
    const now = readFileSync(file, 'utf8');
    expect(now).toBe('listen 8080;\nroot /srv/$&;\n');
    expect(out.sha256).toBe(sha256(now));
    expect(out.diff).toContain('-listen 80;\n-root /var/www;\n+listen 8080;\n+root /srv/$&;');
    expect(statSync(file).mode & 0o7777).toBe(0o640);
    if (isRoot) expect([statSync(file).uid, statSync(file).gid]).toEqual([1234, 2345]);
    expect(tempFiles(join(work, 'edit'))).toEqual([]);
  });

  it('dry_run returns the diff and writes nothing', async () => {
    const file = join(dir('edit-dry'), 'a.txt');
    writeFileSync(file, 'a\nb\n');
    const out = await h.ok<RewriteOut>('ssh_edit_file', { host: 'web1', path: file, edits: [{ old_text: 'b', new_text: 'c' }], dry_run: true });
    expect(out.written).toBe(false);
    expect(out.diff).toContain('+c');
    expect(readFileSync(file, 'utf8')).toBe('a\nb\n');
  });

  it('refuses text that is not unique or not there, and a changed file (expected_sha256), writing nothing', async () => {
    const file = join(dir('edit-refuse'), 'a.txt');
    writeFileSync(file, 'x=1\nx=1\n');
    const twice = await h.err('ssh_edit_file', { host: 'web1', path: file, edits: [{ old_text: 'x=1', new_text: 'x=2' }] });
    expect(twice.code).toBe('INVALID_INPUT');
    expect(twice.message).toContain('occurs 2 times (lines 1, 2)');
    expect((await h.err('ssh_edit_file', { host: 'web1', path: file, edits: [{ old_text: 'y=1', new_text: 'x' }] })).message).toContain('not found');
    const stale = await h.err('ssh_edit_file', { host: 'web1', path: file, expected_sha256: sha256('other'), edits: [{ old_text: 'x=1', new_text: 'x=2', replace_all: true }] });
    expect(stale.code).toBe('REMOTE_FAILURE');
    expect(stale.message).toContain('changed since it was read');
    expect(readFileSync(file, 'utf8')).toBe('x=1\nx=1\n');
    await h.ok('ssh_edit_file', { host: 'web1', path: file, expected_sha256: sha256('x=1\nx=1\n'), edits: [{ old_text: 'x=1', new_text: 'x=2', replace_all: true }] });
    expect(readFileSync(file, 'utf8')).toBe('x=2\nx=2\n');
  });

  it('refuses to edit a binary file, or a restricted one reached through a symlinked directory', async () => {
    const d = dir('edit-bin');
    writeFileSync(join(d, 'b.bin'), Buffer.from([0x61, 0, 0x62]));
    expect((await h.err('ssh_edit_file', { host: 'web1', path: join(d, 'b.bin'), edits: [{ old_text: 'a', new_text: 'c' }] })).message).toContain('binary');
    mkdirSync(join(work, 'app'), { recursive: true });
    writeFileSync(join(work, 'app', '.env'), 'KEY=1\n');
    symlinkSync(join(work, 'app'), join(d, 'app-link'));
    const e = await h.err('ssh_edit_file', { host: 'web1', path: join(d, 'app-link', '.env'), edits: [{ old_text: 'KEY=1', new_text: 'KEY=2' }] });
    expect(e.code).toBe('PATH_DENIED');
    expect(readFileSync(join(work, 'app', '.env'), 'utf8')).toBe('KEY=1\n');
  });
});

describe('ssh_patch_file', () => {
  const before = Array.from({ length: 20 }, (_, i) => `line ${i + 1}`).join('\n') + '\n';
  const after = before.replace('line 2\n', 'line two\n').replace('line 18\n', 'line 18\nline 18.5\n');

  it('applies a unified diff as diff -u prints it, atomically, with a backup when asked', async () => {
    const d = dir('patch');
    const file = join(d, 'app.conf');
    writeFileSync(file, before);
    writeFileSync(join(d, 'new.conf'), after);
    let patch = '';
    try {
      execFileSync('diff', ['-u', file, join(d, 'new.conf')], { encoding: 'utf8' });
    } catch (err) {
      patch = (err as { stdout: string }).stdout;
    }
    expect(patch).toContain('@@');
    const out = await h.ok<RewriteOut & { hunks: number }>('ssh_patch_file', { host: 'web1', path: file, patch, backup: true });
    expect(out.hunks).toBe(2);
    expect(readFileSync(file, 'utf8')).toBe(after);
    expect(out.backup_path).not.toBeNull();
    expect(readFileSync(out.backup_path ?? '', 'utf8')).toBe(before);
  });

  it('refuses a hunk that does not apply, naming it and why, and writes nothing', async () => {
    const file = join(dir('patch-refuse'), 'app.conf');
    const changed = before.replace('line 17\n', 'line seventeen\n');
    writeFileSync(file, changed);
    const e = await h.err('ssh_patch_file', { host: 'web1', path: file, patch: createPatch('app.conf', before, after) });
    expect(e.code).toBe('INVALID_INPUT');
    expect(e.message).toMatch(/hunk 2 of 2 \(@@ .* @@\) does not apply: line 17 of the file is "line seventeen"/u);
    expect(readFileSync(file, 'utf8')).toBe(changed);
    expect(tempFiles(join(work, 'patch-refuse'))).toEqual([]);
  });
});

describe('ssh_write_file extensions', () => {
  it('create_parents creates the missing directories inside the roots', async () => {
    const file = join(work, 'deep', 'er', 'new.txt');
    const out = await h.ok<{ created_directories: string[] }>('ssh_write_file', { host: 'web1', path: file, content: 'hi', create_parents: true });
    expect(readFileSync(file, 'utf8')).toBe('hi');
    expect(out.created_directories).toEqual([join(work, 'deep'), join(work, 'deep', 'er')]);
  });

  it('create_parents does not create directories through a symlink that leads out of the roots', async () => {
    symlinkSync(outside, join(dir('parents-link'), 'out'));
    const e = await h.err('ssh_write_file', { host: 'web1', path: join(work, 'parents-link', 'out', 'made', 'x.txt'), content: 'x', create_parents: true });
    expect(e.code).toBe('PATH_DENIED');
    expect(existsSync(join(outside, 'made'))).toBe(false);
  });

  it('backup keeps the previous content next to the file under a UTC timestamp', async () => {
    const d = dir('backup');
    const file = join(d, 'conf.ini');
    writeFileSync(file, 'old');
    const out = await h.ok<{ backup_path: string }>('ssh_write_file', { host: 'web1', path: file, content: 'new', backup: true });
    expect(out.backup_path).toMatch(/conf\.ini\.sshgate-bak-\d{8}T\d{6}\.\d{3}Z$/u);
    expect(readFileSync(out.backup_path, 'utf8')).toBe('old');
    expect(readFileSync(file, 'utf8')).toBe('new');
  });

  it.skipIf(!isRoot)('keeps owner, group and mode (setgid included) of the file it replaces [needs root to chown]', async () => {
    const file = join(dir('owner'), 'shared.sh');
    writeFileSync(file, '#!/bin/sh\n');
    chownSync(file, 1234, 2345);
    chmodSync(file, 0o2750);
    const out = await h.ok<{ owner_preserved: boolean; mode: string; verified: string }>('ssh_write_file', { host: 'web1', path: file, content: '#!/bin/sh\necho hi\n' });
    const st = statSync(file);
    expect([st.uid, st.gid, st.mode & 0o7777]).toEqual([1234, 2345, 0o2750]);
    expect(out).toMatchObject({ owner_preserved: true, mode: '2750', verified: 'size+sha256' });
  });

  it('writes binary content given as base64 byte for byte', async () => {
    const data = randomBytes(300_000);
    const file = join(dir('binary'), 'blob.bin');
    const out = await h.ok<{ sha256: string }>('ssh_write_file', { host: 'web1', path: file, content: data.toString('base64'), encoding: 'base64' });
    expect(readFileSync(file).equals(data)).toBe(true);
    expect(out.sha256).toBe(sha256(data));
  });

  it('refuses to write a restricted file reached through a symlinked parent directory', async () => {
    symlinkSync(join(work, 'app'), join(dir('write-link'), 'app'));
    mkdirSync(join(work, 'app'), { recursive: true });
    writeFileSync(join(work, 'app', '.env'), 'KEY=1\n');
    expect((await h.err('ssh_write_file', { host: 'web1', path: join(work, 'write-link', 'app', '.env'), content: 'KEY=evil' })).code).toBe('PATH_DENIED');
    expect(readFileSync(join(work, 'app', '.env'), 'utf8')).toBe('KEY=1\n');
  });

  it.skipIf(!isRoot)('on a full disk (a 1 MiB tmpfs), reports the failure and leaves the old file intact [needs root to mount]', async () => {
    const full = join(work, 'full');
    mountTmpfs(full, '1m');
    const file = join(full, 'state.json');
    writeFileSync(file, '{"ok":true}');
    const e = await h.err('ssh_write_file', { host: 'web1', path: file, content: randomBytes(2 * 1024 * 1024).toString('base64'), encoding: 'base64' });
    expect(e.code).toBe('REMOTE_FAILURE');
    expect(e.message).toContain('is full');
    expect(readFileSync(file, 'utf8')).toBe('{"ok":true}');
    expect(readdirSync(full)).toEqual(['state.json']);
    // The same through ssh_edit_file: the old content stays.
    writeFileSync(join(full, 'filler'), Buffer.alloc(1024 * 1024 - 64 * 1024));
    const edit = await h.err('ssh_edit_file', { host: 'web1', path: file, edits: [{ old_text: 'true', new_text: 'x'.repeat(200_000) }] });
    expect(edit.code).toBe('REMOTE_FAILURE');
    expect(readFileSync(file, 'utf8')).toBe('{"ok":true}');
    expect(readdirSync(full).sort()).toEqual(['filler', 'state.json']);
  });
});

describe('verification after every write', () => {
  /** Runs writeAtomicWith on web1 with a fill function that misreports what it wrote. */
  async function lyingWrite(file: string, written: Buffer, claimed: { bytes: number; sha256: string | null }): Promise<unknown> {
    const host = h.runtime.loaded.hosts.get('web1');
    if (host === undefined) throw new Error('web1 missing');
    const signal = new AbortController().signal;
    return withSftp(h.runtime.pool, host, signal, async (sftp) => {
      const target = await confineForWrite(sftp, host, file);
      return writeAtomicWith(
        sftp,
        host,
        target,
        async (handle, tmp) => {
          await sftpOps.write(sftp, handle, written, 0, tmp);
          return claimed;
        },
        { signal },
      );
    }).then(
      () => null,
      (err: unknown) => err,
    );
  }

  it('a write that reached the disk short (what ssh2\'s stream hides on a full disk) fails loudly and replaces nothing', async () => {
    const file = join(dir('verify'), 'short.txt');
    writeFileSync(file, 'old');
    const err = (await lyingWrite(file, Buffer.from('0123456789'), { bytes: 20, sha256: null })) as Error;
    expect(err.message).toContain('short write');
    expect(err.message).toContain('10 of 20 bytes');
    expect(readFileSync(file, 'utf8')).toBe('old');
    expect(tempFiles(join(work, 'verify'))).toEqual([]);
  });

  it('content whose sha256 read back differs from what was sent fails loudly and replaces nothing', async () => {
    const file = join(dir('verify-digest'), 'digest.txt');
    writeFileSync(file, 'old');
    const err = (await lyingWrite(file, Buffer.from('abc'), { bytes: 3, sha256: sha256('abd') })) as Error;
    expect(err.message).toContain('differs from what was sent');
    expect(readFileSync(file, 'utf8')).toBe('old');
    expect(tempFiles(join(work, 'verify-digest'))).toEqual([]);
  });
});

describe('ssh_create_directory', () => {
  it('creates a directory with exactly the mode asked, whatever the umask; with parents, like mkdir -p', async () => {
    const path = join(work, 'mk', 'a', 'b');
    const out = await h.ok<{ created: string[] }>('ssh_create_directory', { host: 'web1', path, parents: true, mode: '0770' });
    expect(out.created).toEqual([join(work, 'mk'), join(work, 'mk', 'a'), path]);
    expect(statSync(path).mode & 0o7777).toBe(0o770);
    expect((await h.ok<{ created: string[] }>('ssh_create_directory', { host: 'web1', path, parents: true })).created).toEqual([]);
    expect((await h.err('ssh_create_directory', { host: 'web1', path })).message).toContain('already exists');
    expect((await h.err('ssh_create_directory', { host: 'web1', path: join(work, 'mk2', 'x') })).code).toBe('REMOTE_NOT_FOUND');
  });

  it('refuses a directory outside the roots or in a restricted path', async () => {
    expect((await h.err('ssh_create_directory', { host: 'web1', path: join(outside, 'x') })).code).toBe('PATH_DENIED');
    expect((await h.err('ssh_create_directory', { host: 'web1', path: join(work, 'restricted', 'x'), parents: true })).code).toBe('PATH_DENIED');
  });
});

describe('ssh_remove_path', () => {
  it('removes a file, a symlink (not its target) and an empty directory', async () => {
    const d = dir('rm');
    writeFileSync(join(d, 'f'), 'x');
    writeFileSync(join(outside, 'target'), 'keep');
    symlinkSync(join(outside, 'target'), join(d, 'link'));
    mkdirSync(join(d, 'empty'));
    for (const name of ['f', 'link', 'empty']) await h.ok('ssh_remove_path', { host: 'web1', path: join(d, name) });
    expect(readdirSync(d)).toEqual([]);
    expect(readFileSync(join(outside, 'target'), 'utf8')).toBe('keep');
  });

  it('removes a tree only with recursive: true; dry_run lists what would go; symlinks inside are not followed', async () => {
    const d = dir('rm-tree');
    mkdirSync(join(d, 't/sub'), { recursive: true });
    writeFileSync(join(d, 't/a'), 'x');
    writeFileSync(join(d, 't/sub/b'), 'x');
    mkdirSync(join(outside, 'victim'), { recursive: true });
    writeFileSync(join(outside, 'victim', 'keep'), 'x');
    symlinkSync(join(outside, 'victim'), join(d, 't/sub/victim-link'));
    const refused = await h.err('ssh_remove_path', { host: 'web1', path: join(d, 't') });
    expect(refused.message).toContain('recursive: true');
    const dry = await h.ok<{ entries: number; listed: string[]; dry_run: boolean }>('ssh_remove_path', { host: 'web1', path: join(d, 't'), recursive: true, dry_run: true });
    expect(dry.entries).toBe(5);
    expect(dry.listed.at(-1)).toBe(join(d, 't'));
    expect(existsSync(join(d, 't/sub/b'))).toBe(true);
    const out = await h.ok<{ entries: number }>('ssh_remove_path', { host: 'web1', path: join(d, 't'), recursive: true });
    expect(out.entries).toBe(5);
    expect(existsSync(join(d, 't'))).toBe(false);
    expect(readFileSync(join(outside, 'victim', 'keep'), 'utf8')).toBe('x');
  });

  it('refuses a tree over limits.max_remove_entries with the count, removing nothing', async () => {
    const d = dir('rm-big');
    for (let i = 0; i < 40; i += 1) writeFileSync(join(d, `f${i}`), 'x');
    const e = await h.err('ssh_remove_path', { host: 'web1', path: d, recursive: true });
    expect(e.code).toBe('POLICY_DENIED');
    expect(e.message).toContain('holds 41 entries, more than limits.max_remove_entries (30)');
    expect(readdirSync(d)).toHaveLength(40);
    expect(await h.ok('ssh_remove_path', { host: 'web1', path: d, recursive: true, dry_run: true })).toMatchObject({ over_limit: true, entries: 41 });
  });

  it('refuses a tree holding a restricted path, and a configured root', async () => {
    mkdirSync(join(work, 'app'), { recursive: true });
    writeFileSync(join(work, 'app', '.env'), 'KEY=1\n');
    const e = await h.err('ssh_remove_path', { host: 'web1', path: join(work, 'app'), recursive: true });
    expect(e.code).toBe('PATH_DENIED');
    expect(existsSync(join(work, 'app', '.env'))).toBe(true);
    const root = await h.err('ssh_remove_path', { host: 'web1', path: work, recursive: true });
    expect(root.code).toBe('PATH_DENIED');
    expect(root.message).toContain('configured root');
  });
});

interface CopyOut {
  method: string;
  files: number;
  directories: number;
  symlinks: number;
  verified: string | null;
}

describe('ssh_copy_path', () => {
  it('copies a file on the host keeping mode and modification time, and replaces only with overwrite', async () => {
    const d = dir('cp');
    writeFileSync(join(d, 'src.sh'), 'echo hi\n');
    chmodSync(join(d, 'src.sh'), 0o750);
    utimesSync(join(d, 'src.sh'), new Date('2021-05-05T05:05:05Z'), new Date('2021-05-05T05:05:05Z'));
    const out = await h.ok<CopyOut>('ssh_copy_path', { host: 'web1', source: join(d, 'src.sh'), destination: join(d, 'dst.sh') });
    expect(out.method).toBe('copy-data');
    expect(readFileSync(join(d, 'dst.sh'), 'utf8')).toBe('echo hi\n');
    expect(statSync(join(d, 'dst.sh')).mode & 0o7777).toBe(0o750);
    expect(statSync(join(d, 'dst.sh')).mtime.toISOString()).toBe('2021-05-05T05:05:05.000Z');
    expect((await h.err('ssh_copy_path', { host: 'web1', source: join(d, 'src.sh'), destination: join(d, 'dst.sh') })).message).toContain('overwrite: true');
    writeFileSync(join(d, 'src.sh'), 'echo two\n');
    await h.ok('ssh_copy_path', { host: 'web1', source: join(d, 'src.sh'), destination: join(d, 'dst.sh'), overwrite: true });
    expect(readFileSync(join(d, 'dst.sh'), 'utf8')).toBe('echo two\n');
    expect(tempFiles(d)).toEqual([]);
  });

  it('copies a tree with recursive: true, symlinks as links, modes kept', async () => {
    const d = dir('cp-tree');
    mkdirSync(join(d, 'src/sub'), { recursive: true });
    writeFileSync(join(d, 'src/a.txt'), 'a');
    writeFileSync(join(d, 'src/sub/b.bin'), randomBytes(100_000));
    chmodSync(join(d, 'src/sub'), 0o700);
    symlinkSync('a.txt', join(d, 'src/link'));
    expect((await h.err('ssh_copy_path', { host: 'web1', source: join(d, 'src'), destination: join(d, 'dst') })).message).toContain('recursive: true');
    const out = await h.ok<CopyOut>('ssh_copy_path', { host: 'web1', source: join(d, 'src'), destination: join(d, 'dst'), recursive: true });
    expect([out.files, out.directories, out.symlinks]).toEqual([2, 2, 1]);
    expect(readFileSync(join(d, 'dst/sub/b.bin')).equals(readFileSync(join(d, 'src/sub/b.bin')))).toBe(true);
    expect(readlinkSync(join(d, 'dst/link'))).toBe('a.txt');
    expect(statSync(join(d, 'dst/sub')).mode & 0o7777).toBe(0o700);
    expect(readdirSync(d).sort()).toEqual(['dst', 'src']);
  });

  it('refuses a destination inside the source, outside the roots, or a tree with a restricted path', async () => {
    const d = dir('cp-refuse');
    mkdirSync(join(d, 'src'));
    expect((await h.err('ssh_copy_path', { host: 'web1', source: join(d, 'src'), destination: join(d, 'src', 'again'), recursive: true })).message).toContain('inside the source');
    expect((await h.err('ssh_copy_path', { host: 'web1', source: join(d, 'src'), destination: join(outside, 'x'), recursive: true })).code).toBe('PATH_DENIED');
    mkdirSync(join(work, 'app'), { recursive: true });
    writeFileSync(join(work, 'app', '.env'), 'KEY=1\n');
    expect((await h.err('ssh_copy_path', { host: 'web1', source: join(work, 'app'), destination: join(d, 'leak'), recursive: true })).code).toBe('PATH_DENIED');
    expect(existsSync(join(d, 'leak'))).toBe(false);
  });

  it.skipIf(!isRoot)('a tree copy that fills the disk leaves no partial destination [needs root to mount]', async () => {
    const small = join(work, 'small-fs');
    mountTmpfs(small, '1m');
    const d = dir('cp-full');
    mkdirSync(join(d, 'src'));
    for (let i = 0; i < 4; i += 1) writeFileSync(join(d, 'src', `f${i}`), randomBytes(400_000));
    const e = await h.err('ssh_copy_path', { host: 'web1', source: join(d, 'src'), destination: join(small, 'dst'), recursive: true });
    expect(e.code).toBe('REMOTE_FAILURE');
    expect(readdirSync(small)).toEqual([]);
  });
});

describe('ssh_move_path', () => {
  it('renames a file and a directory (recursive: true), replacing a file only with overwrite', async () => {
    const d = dir('mv');
    writeFileSync(join(d, 'a'), 'a');
    writeFileSync(join(d, 'b'), 'b');
    expect(await h.ok<CopyOut>('ssh_move_path', { host: 'web1', source: join(d, 'a'), destination: join(d, 'c') })).toMatchObject({ method: 'rename' });
    expect(readdirSync(d).sort()).toEqual(['b', 'c']);
    expect((await h.err('ssh_move_path', { host: 'web1', source: join(d, 'c'), destination: join(d, 'b') })).message).toContain('overwrite: true');
    await h.ok('ssh_move_path', { host: 'web1', source: join(d, 'c'), destination: join(d, 'b'), overwrite: true });
    expect(readFileSync(join(d, 'b'), 'utf8')).toBe('a');
    mkdirSync(join(d, 'tree/x'), { recursive: true });
    expect((await h.err('ssh_move_path', { host: 'web1', source: join(d, 'tree'), destination: join(d, 'tree2') })).message).toContain('recursive: true');
    await h.ok('ssh_move_path', { host: 'web1', source: join(d, 'tree'), destination: join(d, 'tree2'), recursive: true });
    expect(existsSync(join(d, 'tree2/x'))).toBe(true);
  });

  it('moves a symlink as a link, and refuses a destination outside the roots before anything runs', async () => {
    const d = dir('mv-link');
    symlinkSync(outside, join(d, 'l'));
    await h.ok('ssh_move_path', { host: 'web1', source: join(d, 'l'), destination: join(d, 'l2') });
    expect(lstatSync(join(d, 'l2')).isSymbolicLink()).toBe(true);
    writeFileSync(join(d, 'f'), 'x');
    expect((await h.err('ssh_move_path', { host: 'web1', source: join(d, 'f'), destination: join(outside, 'f') })).code).toBe('PATH_DENIED');
    expect(existsSync(join(d, 'f'))).toBe(true);
    const lines = await h.auditLines();
    const last = lines.at(-1) as { decision: string; rule: string };
    expect(last.decision).toBe('denied');
  });

  it.skipIf(!isRoot)('across file systems falls back to copy + remove [needs root to mount]', async () => {
    const fs2 = join(work, 'other-fs');
    mountTmpfs(fs2, '8m');
    const d = dir('mv-xdev');
    mkdirSync(join(d, 'tree/sub'), { recursive: true });
    writeFileSync(join(d, 'tree/sub/f'), 'data');
    writeFileSync(join(d, 'file'), 'file data');
    chmodSync(join(d, 'file'), 0o604);
    expect(await h.ok<CopyOut>('ssh_move_path', { host: 'web1', source: join(d, 'file'), destination: join(fs2, 'file') })).toMatchObject({ method: 'copy+remove' });
    expect(readFileSync(join(fs2, 'file'), 'utf8')).toBe('file data');
    expect(statSync(join(fs2, 'file')).mode & 0o7777).toBe(0o604);
    expect(existsSync(join(d, 'file'))).toBe(false);
    expect(await h.ok<CopyOut>('ssh_move_path', { host: 'web1', source: join(d, 'tree'), destination: join(fs2, 'tree'), recursive: true })).toMatchObject({ method: 'copy+remove' });
    expect(readFileSync(join(fs2, 'tree/sub/f'), 'utf8')).toBe('data');
    expect(existsSync(join(d, 'tree'))).toBe(false);
  });
});
