// The sudo tools against a real OpenSSH sshd and the real sudo, with dedicated test accounts and sudoers rules.
// Creating accounts and sudoers drop-ins needs root: without it the suite is skipped, saying why.
import { execFileSync, spawnSync } from 'node:child_process';
import { chmodSync, chownSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startSshd, type SshdInstance } from '../../src/testing/sshd.js';
import { startHarness, type Harness } from '../helpers/harness.js';
import { waitFor } from '../helpers/wait.js';

const isRoot = process.getuid?.() === 0;
const SKIP_REASON = 'the sudo tests create accounts and sudoers rules on this machine, which needs root';

const SUDOER = 'sshgate-sudoer';
const NOPASS = 'sshgate-nopass';
const REQTTY = 'sshgate-reqtty';
const NOSUDO = 'sshgate-nosudo';
const USERS = [SUDOER, NOPASS, REQTTY, NOSUDO];
const PASSWORD = `Sudo-${createHash('sha256').update(String(process.pid)).digest('hex').slice(0, 12)}-pw`;
const COMMAND_ONLY_SECRET = `Cmd-only-${process.pid}-secret`;
const ENV = { good: 'SSHGATE_TEST_SUDO_PASSWORD', wrong: 'SSHGATE_TEST_SUDO_WRONG_PASSWORD' } as const;
const WHOLE_READ_LIMIT = 4096;
const SUDOERS_FILE = `/etc/sudoers.d/sshgate-test-${process.pid}`;

function run(file: string, args: string[], input?: string): void {
  const result = spawnSync(file, args, { encoding: 'utf8', ...(input === undefined ? {} : { input }) });
  if (result.error !== undefined) throw result.error;
  if (result.status !== 0) throw new Error(`${file} ${args.join(' ')} failed (exit ${result.status ?? 'none'}): ${result.stderr}`);
}

/** sudo must be installed for these tests; install it with apt when it is missing (never skip silently). */
function ensureSudo(): void {
  if (spawnSync('sh', ['-c', 'command -v sudo && command -v visudo']).status === 0) return;
  if (spawnSync('sh', ['-c', 'command -v apt-get']).status !== 0) {
    throw new Error('sudo is not installed and apt-get is not available to install it: install the "sudo" package to run test/integration/sudo.test.ts');
  }
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  let install = spawnSync('apt-get', ['install', '-y', '-q', 'sudo'], { encoding: 'utf8', env });
  if (install.status !== 0) {
    spawnSync('apt-get', ['update', '-q'], { encoding: 'utf8', env });
    install = spawnSync('apt-get', ['install', '-y', '-q', 'sudo'], { encoding: 'utf8', env });
  }
  if (install.status !== 0) throw new Error(`sudo is not installed and "apt-get install -y sudo" failed: ${install.stderr}`);
}

function createUser(name: string, password: string | null): void {
  if (spawnSync('id', [name]).status !== 0) run('useradd', ['-m', '-s', '/bin/bash', name]);
  // Without PAM, sshd refuses a locked account ('!'); '*' is "no password" but not locked, so key login works.
  if (password === null) run('usermod', ['-p', '*', name]);
  else run('chpasswd', [], `${name}:${password}\n`);
}

/** Command lines of every process on this machine (the test sshd is local). */
function processList(): string {
  return execFileSync('ps', ['-eo', 'args='], { encoding: 'utf8' });
}


describe.skipIf(!isRoot)(`sudo tools${isRoot ? '' : ` (skipped: ${SKIP_REASON})`}`, () => {
  let sshd: SshdInstance;
  let h: Harness;
  let work: string;
  let outside: string;
  let passwordFile: string;
  let commandSecretFile: string;

  /** Sessions (exec channels) the test sshd has started so far, from its VERBOSE log. */
  const sessionsStarted = (): number => readFileSync(sshd.logPath, 'utf8').split('\n').filter((l) => l.includes('Starting session')).length;
  /** Fails when a session started since `before` (after a pause, so that a late log line is seen). */
  const expectNoNewSession = async (before: number): Promise<void> => {
    await new Promise((r) => setTimeout(r, 200));
    expect(sessionsStarted()).toBe(before);
  };

  /** Undo steps, run last-first in afterAll, registered as each thing is made (so a failed set-up is undone too). */
  const cleanups: (() => Promise<void> | void)[] = [];

  beforeAll(async () => {
    ensureSudo();
    // The accounts are dedicated to this test (a crashed run's leftovers are reused, then removed).
    cleanups.push(() => {
      for (const user of USERS) spawnSync('userdel', ['-f', '-r', user], { encoding: 'utf8' });
    });
    createUser(SUDOER, PASSWORD);
    createUser(NOPASS, null);
    createUser(REQTTY, PASSWORD);
    createUser(NOSUDO, PASSWORD);
    const rules = [
      `${SUDOER} ALL=(ALL:ALL) ALL`,
      `${NOPASS} ALL=(ALL:ALL) NOPASSWD: ALL`,
      `Defaults:${REQTTY} requiretty`,
      `${REQTTY} ALL=(ALL:ALL) ALL`,
      '',
    ].join('\n');
    const draft = `${SUDOERS_FILE}.draft`;
    writeFileSync(draft, rules, { mode: 0o440 });
    try {
      run('visudo', ['-c', '-q', '-f', draft]);
    } finally {
      rmSync(draft, { force: true });
    }
    // A name without a dot: sudo's @includedir skips files whose names contain one.
    cleanups.push(() => {
      rmSync(SUDOERS_FILE, { force: true });
    });
    writeFileSync(SUDOERS_FILE, rules, { mode: 0o440 });

    work = mkdtempSync('/tmp/sshgate-sudo-work-');
    cleanups.push(() => {
      rmSync(work, { recursive: true, force: true });
    });
    chmodSync(work, 0o755);
    mkdirSync(join(work, 'etc'), { mode: 0o755 });
    outside = mkdtempSync('/tmp/sshgate-sudo-outside-');
    cleanups.push(() => {
      rmSync(outside, { recursive: true, force: true });
    });
    chmodSync(outside, 0o755);
    writeFileSync(join(outside, 'secret.conf'), 'outside-secret\n', { mode: 0o600 });
    symlinkSync(join(outside, 'secret.conf'), join(work, 'etc', 'escape.conf'));
    const secrets = mkdtempSync('/tmp/sshgate-sudo-secrets-');
    cleanups.push(() => {
      rmSync(secrets, { recursive: true, force: true });
    });
    passwordFile = join(secrets, 'password');
    writeFileSync(passwordFile, `${PASSWORD}\nmetadata: ignored\n`, { mode: 0o600 });
    commandSecretFile = join(secrets, 'command-only');
    writeFileSync(commandSecretFile, `${COMMAND_ONLY_SECRET}\n`, { mode: 0o600 });

    process.env[ENV.good] = PASSWORD;
    process.env[ENV.wrong] = 'not-the-password';
    cleanups.push(() => {
      Reflect.deleteProperty(process.env, ENV.good);
      Reflect.deleteProperty(process.env, ENV.wrong);
    });
    sshd = await startSshd({ address: '127.0.0.61', user: SUDOER });
    cleanups.push(() => sshd.dispose());
    const roots = [work];
    h = await startHarness({
      hosts: {
        root1: { sshd, config: { user: SUDOER, sudo_password_env: ENV.good, roots } },
        bycommand: { sshd, config: { user: SUDOER, sudo_password_command: ['cat', passwordFile], roots } },
        wrongpw: { sshd, config: { user: SUDOER, sudo_password_env: ENV.wrong, roots } },
        nopw: { sshd, config: { user: SUDOER, roots } },
        nopass: { sshd, config: { user: NOPASS, roots } },
        nopassWithPw: { sshd, config: { user: NOPASS, sudo_password_env: ENV.good, roots } },
        // The password printed by this command is known nowhere else: only the runtime addSecret can redact it.
        nopassByCommand: { sshd, config: { user: NOPASS, sudo_password_command: ['cat', commandSecretFile], roots } },
        badCommand: { sshd, config: { user: SUDOER, sudo_password_command: ['sh', '-c', 'echo vault is sealed >&2; exit 3'], roots } },
        reqtty: { sshd, config: { user: REQTTY, sudo_password_env: ENV.good, roots } },
        nosudo: { sshd, config: { user: NOSUDO, sudo_password_env: ENV.good, roots } },
      },
      // A small whole-read limit, so that ranges of a larger file are read on the host (tail/head), not sliced here.
      config: { tier: 'sudo', limits: { max_write_bytes: WHOLE_READ_LIMIT } },
    });
    cleanups.push(() => h.close());
  }, 300_000);

  afterAll(async () => {
    for (const undo of cleanups.reverse()) await undo();
  });

  describe('ssh_sudo_exec', () => {
    it('runs the command as root with the password from sudo_password_env', async () => {
      const out = await h.ok<{ exit_code: number; stdout: string; stderr: string }>('ssh_sudo_exec', { host: 'root1', command: 'id -u; id -un' });
      expect(out).toMatchObject({ exit_code: 0, stdout: '0\nroot\n', stderr: '' });
    });

    it('runs the command as root with the first line printed by sudo_password_command', async () => {
      const out = await h.ok<{ exit_code: number; stdout: string }>('ssh_sudo_exec', { host: 'bycommand', command: 'id -u' });
      expect(out).toMatchObject({ exit_code: 0, stdout: '0\n' });
    });

    it('uses sudo -n on a passwordless sudoer with no password configured', async () => {
      const out = await h.ok<{ exit_code: number; stdout: string }>('ssh_sudo_exec', { host: 'nopass', command: 'id -u' });
      expect(out).toMatchObject({ exit_code: 0, stdout: '0\n' });
    });

    it('reports a non-zero exit as data and keeps the command\'s stderr, with sudo\'s own output removed', async () => {
      const out = await h.ok<{ exit_code: number; stderr: string }>('ssh_sudo_exec', { host: 'root1', command: 'echo oops >&2; exit 3' });
      expect(out).toMatchObject({ exit_code: 3, stderr: 'oops\n' });
    });

    it('enters cwd as root, even a directory the login account cannot enter', async () => {
      const locked = join(work, 'locked');
      mkdirSync(locked, { mode: 0o700 });
      const out = await h.ok<{ stdout: string }>('ssh_sudo_exec', { host: 'root1', command: 'pwd', cwd: locked });
      expect(out.stdout).toBe(`${locked}\n`);
    });

    it('never shows the password in the host\'s process list while sudo runs, nor in the output or audit log', async () => {
      const marker = `sleep 2.${process.pid % 1000}`;
      const pending = h.call('ssh_sudo_exec', { host: 'root1', command: `${marker}; echo done` });
      let sawCommand = false;
      let leaked = false;
      await waitFor(() => {
        const list = processList();
        if (list.includes(PASSWORD)) leaked = true;
        if (list.split('\n').some((l) => l.startsWith(marker))) sawCommand = true;
        return false;
      }, 1500);
      const result = await pending;
      expect(sawCommand).toBe(true);
      expect(leaked).toBe(false);
      expect(result.isError).not.toBe(true);
      expect(JSON.stringify(result)).not.toContain(PASSWORD);
      expect(readFileSync(h.auditPath, 'utf8')).not.toContain(PASSWORD);
    });

    it('a passwordless sudoer with a configured password does not get the password on the command\'s stdin', async () => {
      const out = await h.ok<{ exit_code: number; stdout: string }>('ssh_sudo_exec', { host: 'nopassWithPw', command: 'cat; id -u' });
      expect(out).toMatchObject({ exit_code: 0, stdout: '0\n' });
    });

    it('redacts a password that came from sudo_password_command from the output', async () => {
      const out = await h.ok<{ stdout: string }>('ssh_sudo_exec', { host: 'nopassByCommand', command: `cat ${commandSecretFile}` });
      expect(out.stdout).not.toContain(COMMAND_ONLY_SECRET);
      expect(out.stdout).toContain('<redacted:');
    });

    it('a wrong password fails at once with SUDO_FAILED (wrong_password) instead of hanging on a re-prompt', async () => {
      const started = Date.now();
      const e = await h.err('ssh_sudo_exec', { host: 'wrongpw', command: 'id -u', timeout_ms: 60_000 });
      expect(e.code).toBe('SUDO_FAILED');
      expect(e.details?.['reason']).toBe('wrong_password');
      expect(e.message).toContain('refused the configured password');
      // pam_unix waits ~2 s after a failure; the re-prompt must meet EOF, not wait for the 60 s timeout.
      expect(Date.now() - started).toBeLessThan(20_000);
    });

    it('a sudoers "Defaults requiretty" gives SUDO_FAILED (tty_required) with a hint', async () => {
      const e = await h.err('ssh_sudo_exec', { host: 'reqtty', command: 'id -u' });
      expect(e.code).toBe('SUDO_FAILED');
      expect(e.details?.['reason']).toBe('tty_required');
      expect(e.hint).toContain('!requiretty');
    });

    it('an account that is not a sudoer gives SUDO_FAILED (not_permitted)', async () => {
      const e = await h.err('ssh_sudo_exec', { host: 'nosudo', command: 'id -u' });
      expect(e.code).toBe('SUDO_FAILED');
      expect(e.details?.['reason']).toBe('not_permitted');
    });

    it('a sudoer that needs a password but has none configured gives SUDO_FAILED (password_required)', async () => {
      const e = await h.err('ssh_sudo_exec', { host: 'nopw', command: 'id -u' });
      expect(e.code).toBe('SUDO_FAILED');
      expect(e.details?.['reason']).toBe('password_required');
      expect(e.hint).toContain('sudo_password_env');
    });

    it('a failing sudo_password_command gives SUDO_FAILED (password_unavailable) and runs nothing on the host', async () => {
      const before = sessionsStarted();
      const e = await h.err('ssh_sudo_exec', { host: 'badCommand', command: 'id -u' });
      await expectNoNewSession(before);
      expect(e.code).toBe('SUDO_FAILED');
      expect(e.details?.['reason']).toBe('password_unavailable');
      expect(e.message).toContain('exit 3');
      expect(e.message).toContain('vault is sealed');
    });

    it('the command policy still applies: a hidden command is refused before anything runs', async () => {
      const e = await h.err('ssh_sudo_exec', { host: 'root1', command: 'eval "$X"' });
      expect(e.code).toBe('COMMAND_DENIED');
    });

    it('a cwd outside the roots is refused', async () => {
      const e = await h.err('ssh_sudo_exec', { host: 'root1', command: 'ls', cwd: '/etc' });
      expect(e.code).toBe('PATH_DENIED');
    });

    it('a timeout stops the root command on the host', async () => {
      const marker = `sleep 37.${process.pid % 1000}`;
      const running = () => processList().split('\n').some((l) => l.startsWith(marker));
      const pending = h.err('ssh_sudo_exec', { host: 'root1', command: marker, timeout_ms: 2000 });
      expect(await waitFor(running, 2000)).toBe(true);
      const e = await pending;
      expect(e.code).toBe('COMMAND_TIMEOUT');
      const gone = await waitFor(() => !running(), 8000);
      expect(gone).toBe(true);
    });
  });

  describe('ssh_sudo_read_file', () => {
    it('reads a root-owned 0640 file that the login account cannot read', async () => {
      const file = join(work, 'etc', 'shadowish.conf');
      writeFileSync(file, 'line1\nline2\nline3\n', { mode: 0o640 });
      chmodSync(file, 0o640);
      const denied = await h.err('ssh_read_file', { host: 'root1', path: file });
      expect(denied.code).toBe('REMOTE_PERMISSION_DENIED');
      const out = await h.ok<{ content: string; size: number; sha256: string; path: string }>('ssh_sudo_read_file', { host: 'root1', path: file });
      expect(out).toMatchObject({ content: 'line1\nline2\nline3\n', size: 18, path: file });
      expect(out.sha256).toBe(createHash('sha256').update('line1\nline2\nline3\n').digest('hex'));
    });

    it('reads line ranges and byte ranges like ssh_read_file', async () => {
      const file = join(work, 'etc', 'ranges.conf');
      writeFileSync(file, 'a\nbb\nccc\ndddd\n', { mode: 0o600 });
      const lines = await h.ok<{ content: string; start_line: number; end_line: number }>('ssh_sudo_read_file', { host: 'root1', path: file, start_line: 2, line_count: 2 });
      expect(lines).toMatchObject({ content: 'bb\nccc\n', start_line: 2, end_line: 3 });
      const bytes = await h.ok<{ content: string; truncated: boolean; next_offset: number }>('ssh_sudo_read_file', { host: 'root1', path: file, offset: 2, max_bytes: 3 });
      expect(bytes).toMatchObject({ content: 'bb\n', truncated: true, next_offset: 5 });
    });

    it('reads ranges of a file larger than the whole-read limit on the host, without a sha256', async () => {
      const file = join(work, 'etc', 'big.log');
      const lines = Array.from({ length: 2000 }, (_, i) => `line ${i + 1}\n`);
      writeFileSync(file, lines.join(''), { mode: 0o600 });
      const total = statSync(file).size;
      expect(total).toBeGreaterThan(WHOLE_READ_LIMIT);
      const range = await h.ok<{ content: string; start_line: number; end_line: number; sha256: string | null; size: number }>('ssh_sudo_read_file', {
        host: 'root1',
        path: file,
        start_line: 1500,
        line_count: 3,
      });
      expect(range).toMatchObject({ content: 'line 1500\nline 1501\nline 1502\n', start_line: 1500, end_line: 1502, sha256: null, size: total });
      const capped = await h.ok<{ content: string; end_line: number; truncated: boolean }>('ssh_sudo_read_file', { host: 'root1', path: file, start_line: 10, max_bytes: 25 });
      expect(capped).toMatchObject({ content: 'line 10\nline 11\nline 12\n', end_line: 12, truncated: true });
      const bytes = await h.ok<{ content: string; next_offset: number; truncated: boolean }>('ssh_sudo_read_file', { host: 'root1', path: file, offset: 7, max_bytes: 7 });
      expect(bytes).toMatchObject({ content: 'line 2\n', truncated: true, next_offset: 14 });
      const head = await h.ok<{ bytes: number; truncated: boolean; next_offset: number; sha256: string | null }>('ssh_sudo_read_file', { host: 'root1', path: file, max_bytes: 100 });
      expect(head).toMatchObject({ bytes: 100, truncated: true, next_offset: 100, sha256: null });
    });

    it('reads a binary file as base64 and refuses it as utf8', async () => {
      const file = join(work, 'etc', 'blob.bin');
      const data = Buffer.from([0, 1, 2, 255, 10, 0, 128]);
      writeFileSync(file, data, { mode: 0o600 });
      const out = await h.ok<{ content: string; encoding: string }>('ssh_sudo_read_file', { host: 'root1', path: file, encoding: 'base64' });
      expect(Buffer.from(out.content, 'base64')).toEqual(data);
      const e = await h.err('ssh_sudo_read_file', { host: 'root1', path: file });
      expect(e.code).toBe('INVALID_INPUT');
    });

    it('refuses a path outside the roots before anything runs on the host', async () => {
      const before = sessionsStarted();
      expect(before).toBeGreaterThan(0);
      const e = await h.err('ssh_sudo_read_file', { host: 'root1', path: '/etc/shadow' });
      expect(e.code).toBe('PATH_DENIED');
      await expectNoNewSession(before);
      const audit = (await h.auditLines()).at(-1);
      expect(audit).toMatchObject({ tool: 'ssh_sudo_read_file', decision: 'denied', result: 'PATH_DENIED' });
    });

    it('refuses a symlink inside the roots whose real path (resolved as root) leads out of them', async () => {
      const e = await h.err('ssh_sudo_read_file', { host: 'root1', path: join(work, 'etc', 'escape.conf') });
      expect(e.code).toBe('PATH_DENIED');
      expect(JSON.stringify(e)).not.toContain('outside-secret');
    });

    it('reports a missing file as REMOTE_NOT_FOUND', async () => {
      const e = await h.err('ssh_sudo_read_file', { host: 'root1', path: join(work, 'etc', 'nope.conf') });
      expect(e.code).toBe('REMOTE_NOT_FOUND');
    });
  });

  describe('ssh_sudo_write_file', () => {
    it('replaces a root-owned 0640 file atomically, keeping its owner, group and mode', async () => {
      const file = join(work, 'etc', 'app.conf');
      writeFileSync(file, 'old\n', { mode: 0o640 });
      chmodSync(file, 0o640);
      chownSync(file, 0, 1);
      const inodeBefore = statSync(file).ino;
      const out = await h.ok<{ created: boolean; mode: string; uid: number; gid: number; sha256: string }>('ssh_sudo_write_file', { host: 'root1', path: file, content: 'new content\n' });
      expect(out).toMatchObject({ created: false, mode: '0640', uid: 0, gid: 1 });
      const after = statSync(file);
      expect(readFileSync(file, 'utf8')).toBe('new content\n');
      expect(after.mode & 0o7777).toBe(0o640);
      expect([after.uid, after.gid]).toEqual([0, 1]);
      // A rename puts a new inode in place: readers never saw a half-written file.
      expect(after.ino).not.toBe(inodeBefore);
      expect(readdirSync(join(work, 'etc')).filter((n) => n.includes('sshgate-'))).toEqual([]);
    });

    it('creates a new root-owned file with mode 0644, or the mode given', async () => {
      const file = join(work, 'etc', 'fresh.conf');
      const out = await h.ok<{ created: boolean; mode: string; uid: number }>('ssh_sudo_write_file', { host: 'bycommand', path: file, content: 'fresh\n' });
      expect(out).toMatchObject({ created: true, mode: '0644', uid: 0 });
      const moded = await h.ok<{ mode: string }>('ssh_sudo_write_file', { host: 'root1', path: file, content: 'fresh\n', mode: '0600' });
      expect(moded.mode).toBe('0600');
      expect(statSync(file).mode & 0o7777).toBe(0o600);
    });

    it('a passwordless sudoer with a configured password writes exactly the content (the password line is never written)', async () => {
      const file = join(work, 'etc', 'nopass.conf');
      await h.ok('ssh_sudo_write_file', { host: 'nopassWithPw', path: file, content: 'exact\n' });
      expect(readFileSync(file, 'utf8')).toBe('exact\n');
      await h.ok('ssh_sudo_write_file', { host: 'nopass', path: file, content: 'still exact\n' });
      expect(readFileSync(file, 'utf8')).toBe('still exact\n');
    });

    it('refuses to write when expected_sha256 does not match, leaving the file untouched', async () => {
      const file = join(work, 'etc', 'guarded.conf');
      writeFileSync(file, 'v1\n', { mode: 0o600 });
      const e = await h.err('ssh_sudo_write_file', { host: 'root1', path: file, content: 'v2\n', expected_sha256: 'a'.repeat(64) });
      expect(e.code).toBe('REMOTE_FAILURE');
      expect(readFileSync(file, 'utf8')).toBe('v1\n');
      const current = createHash('sha256').update('v1\n').digest('hex');
      await h.ok('ssh_sudo_write_file', { host: 'root1', path: file, content: 'v2\n', expected_sha256: current });
      expect(readFileSync(file, 'utf8')).toBe('v2\n');
    });

    it('a wrong password fails fast and writes nothing', async () => {
      const file = join(work, 'etc', 'never.conf');
      const e = await h.err('ssh_sudo_write_file', { host: 'wrongpw', path: file, content: 'x\n' });
      expect(e.code).toBe('SUDO_FAILED');
      expect(e.details?.['reason']).toBe('wrong_password');
      expect(existsSync(file)).toBe(false);
    });

    it('refuses a path outside the roots, and a symlink that leads out of them, leaving the target untouched', async () => {
      const e = await h.err('ssh_sudo_write_file', { host: 'root1', path: '/etc/sshgate-should-not-exist', content: 'x\n' });
      expect(e.code).toBe('PATH_DENIED');
      expect(existsSync('/etc/sshgate-should-not-exist')).toBe(false);
      const link = await h.err('ssh_sudo_write_file', { host: 'root1', path: join(work, 'etc', 'escape.conf'), content: 'pwned\n' });
      expect(link.code).toBe('PATH_DENIED');
      expect(readFileSync(join(outside, 'secret.conf'), 'utf8')).toBe('outside-secret\n');
    });
  });
});
