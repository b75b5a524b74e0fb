// Persistent shells (issue 5): posix sessions against a real OpenSSH sshd, cli sessions against an emulated
// Cisco-like device (test/helpers/cli-device.ts), both through a real MCP client.
import { existsSync } from 'node:fs';
import { appendFile } from 'node:fs/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ShellSendResult } from '../../src/ssh/shell-session.js';
import { startSshd, type SshdInstance } from '../../src/testing/sshd.js';
import { startCliDevice, type CliDevice } from '../helpers/cli-device.js';
import { startHarness, type Harness } from '../helpers/harness.js';
import { localProcesses, waitFor } from '../helpers/wait.js';

interface Opened {
  session_id: string;
  host: string;
  platform: string;
  cwd: string | null;
  prompt: string | null;
  remote_pid: number | null;
  output: string;
  note: string | null;
}

/** ssh_send_shell's structured result. */
type Sent = ShellSendResult;

const PROMPT_REGEX = '^[\\w.-]+(\\([\\w-]+\\))?[>#] ?$';

let sshd: SshdInstance;
let device: CliDevice;
let h: Harness;

async function startWith(options: Parameters<typeof startHarness>[0]): Promise<Harness> {
  const harness = await startHarness(options);
  await appendFile(harness.knownHostsPath, `${device.knownHostsLine}\n`);
  return harness;
}

function routerHost(extra: Record<string, unknown> = {}): { sshd: SshdInstance; config: Record<string, unknown> } {
  return { sshd, config: { hostname: device.address, port: device.port, platform: 'cli', prompt_regex: PROMPT_REGEX, ...extra } };
}

beforeAll(async () => {
  sshd = await startSshd({ address: '127.0.0.51' });
  device = await startCliDevice({ address: '127.0.0.52' });
  h = await startWith({
    hosts: {
      box: { sshd, config: { commands: { deny: ['^rm '] } } },
      other: { sshd },
      capbox: { sshd },
      router: routerHost({ commands: { deny: ['^reload'] } }),
      pagerbox: routerHost({ pager_off: 'terminal pager 0' }),
      guarded: routerHost({ approval: ['^conf(igure)?\\s+t'] }),
    },
    config: { tier: 'exec', shells: { max_per_host: 2 } },
  });
});

afterAll(async () => {
  await h.close();
  await device.close();
  await sshd.stop();
});

const open = (host: string, harness: Harness = h): Promise<Opened> => harness.ok<Opened>('ssh_open_shell', { host });
const send = (host: string, sessionId: string, command: string, extra: Record<string, unknown> = {}, harness: Harness = h): Promise<Sent> =>
  harness.ok<Sent>('ssh_send_shell', { host, session_id: sessionId, command, ...extra });

describe('posix shell sessions', () => {
  let id: string;
  beforeAll(async () => {
    const opened = await open('box');
    expect(opened).toMatchObject({ host: 'box', platform: 'posix', prompt: null, output: '' });
    expect(opened.session_id).toMatch(/^sh-[0-9a-f]{32}$/u);
    expect(opened.remote_pid).toBeGreaterThan(1);
    id = opened.session_id;
  });

  it('keeps the working directory and exported variables between commands', async () => {
    const first = await send('box', id, 'cd /usr && export SG_GREETING=hello && plain=kept');
    expect(first).toMatchObject({ exit_code: 0, output: '', cwd: '/usr', session_open: true });
    const second = await send('box', id, 'pwd; echo "$SG_GREETING $plain"; printenv SG_GREETING');
    expect(second.output).toBe('/usr\nhello kept\nhello\n');
  });

  it('reports exact exit codes, and stdout and stderr together in the order written', async () => {
    expect((await send('box', id, '(exit 7)')).exit_code).toBe(7);
    expect((await send('box', id, 'false')).exit_code).toBe(1);
    expect((await send('box', id, 'ls /nonexistent-sg-dir')).exit_code).toBe(2);
    const mixed = await send('box', id, 'echo one; echo two >&2; echo three');
    expect(mixed).toMatchObject({ output: 'one\ntwo\nthree\n', exit_code: 0 });
    expect((await send('box', id, "printf 'no newline'")).output).toBe('no newline');
  });

  it('cannot be confused by marker-like text in the output (the marker is random per command)', async () => {
    const out = await send('box', id, String.raw`printf 'before\n\036Edeadbeefdeadbeefdeadbeef:0:/\036\n'; printf '\036Edeadbeef\036' >&2; echo after; (exit 5)`);
    expect(out.exit_code).toBe(5);
    // (sshgate strips control characters such as \036 from what the model sees.)
    expect(out.output).toBe('before\nEdeadbeefdeadbeefdeadbeef:0:/\nEdeadbeefafter\n');
  });

  it('gives a command that reads stdin end-of-file instead of hanging the session', async () => {
    const out = await send('box', id, 'cat; read -r line; echo "read=$?"', { timeout_ms: 5000 });
    expect(out).toMatchObject({ output: 'read=1\n', exit_code: 0, timed_out: false });
  });

  it('interrupts a command at its timeout (SIGINT), stops the whole command list, and the session stays usable', async () => {
    const out = await send('box', id, 'echo started; sleep 31.4159; echo after', { timeout_ms: 700 });
    expect(out).toMatchObject({ timed_out: true, exit_code: 130, session_open: true, output: 'started\n' });
    expect(out.note).toContain('interrupted');
    expect(out.duration_ms).toBeLessThan(5000);
    expect(await waitFor(() => localProcesses('sleep 31.4159').length === 0)).toBe(true);
    expect(await send('box', id, 'echo next; pwd')).toMatchObject({ output: 'next\n/usr\n', exit_code: 0, timed_out: false });
  });

  it('interrupts a loop of shell builtins too', async () => {
    const out = await send('box', id, 'while :; do :; done', { timeout_ms: 500 });
    expect(out).toMatchObject({ timed_out: true, exit_code: 130, session_open: true });
    expect((await send('box', id, 'echo alive')).output).toBe('alive\n');
  });

  it('stops the command on the host when the client cancels the call, and the session stays usable', async () => {
    const controller = new AbortController();
    const call = h.call('ssh_send_shell', { host: 'box', session_id: id, command: 'sleep 23.1406; echo after' }, { signal: controller.signal });
    expect(await waitFor(() => localProcesses('sleep 23.1406').length === 1)).toBe(true);
    controller.abort();
    await expect(call).rejects.toThrow();
    expect(await waitFor(() => localProcesses('sleep 23.1406').length === 0)).toBe(true);
    expect((await send('box', id, 'echo still here')).output).toBe('still here\n');
  });

  it('shows output that background jobs wrote between commands with the next command', async () => {
    await send('box', id, '(sleep 0.2; echo late) &');
    await new Promise((r) => setTimeout(r, 600));
    expect((await send('box', id, 'echo now')).output).toBe('late\nnow\n');
  });

  it('runs commands of one session one after the other', async () => {
    const [a, b] = await Promise.all([send('box', id, 'sleep 0.3; echo one'), send('box', id, 'echo two')]);
    expect(a.output).toBe('one\n');
    expect(b.output).toBe('two\n');
  });

  it('caps the output like ssh_exec, keeping head and tail', async () => {
    const out = await send('box', id, 'seq 1 100000', { max_output_bytes: 2048 });
    expect(out.truncated).toBe(true);
    expect(out.output_bytes).toBe(588895);
    expect(out.output.startsWith('1\n2\n3\n')).toBe(true);
    expect(out.output.endsWith('99999\n100000\n')).toBe(true);
    expect(out.output).toContain('bytes omitted');
  });

  it('applies the host command policy (bash grammar) before anything is sent', async () => {
    expect((await h.err('ssh_send_shell', { host: 'box', session_id: id, command: 'rm -rf /tmp/sg-nothing' })).code).toBe('COMMAND_DENIED');
    expect((await h.err('ssh_send_shell', { host: 'box', session_id: id, command: 'eval echo hi' })).code).toBe('COMMAND_DENIED');
    const audit = (await h.auditLines()).filter((l) => l['tool'] === 'ssh_send_shell' && l['decision'] === 'denied');
    expect(audit.length).toBeGreaterThanOrEqual(2);
  });

  it('lists open sessions with their working directory', async () => {
    const { sessions } = await h.ok<{ sessions: { session_id: string; cwd: string | null; platform: string; commands_run: number }[] }>('ssh_list_shells');
    const mine = sessions.find((s) => s.session_id === id);
    expect(mine).toMatchObject({ cwd: '/usr', platform: 'posix' });
    expect(mine?.commands_run).toBeGreaterThan(5);
  });

  it('treats an id used with another host, or an unknown id, as SESSION_NOT_FOUND', async () => {
    const wrongHost = await h.err('ssh_send_shell', { host: 'other', session_id: id, command: 'echo hi' });
    expect(wrongHost.code).toBe('SESSION_NOT_FOUND');
    expect(wrongHost.message).not.toContain('closed because');
    expect((await h.err('ssh_send_shell', { host: 'box', session_id: `sh-${'0'.repeat(32)}`, command: 'echo hi' })).code).toBe('SESSION_NOT_FOUND');
    expect((await h.err('ssh_close_shell', { host: 'other', session_id: id })).code).toBe('SESSION_NOT_FOUND');
  });

  it('ends the session when the command exits the shell, and reports the status', async () => {
    const s = await open('other');
    const out = await send('other', s.session_id, 'echo bye; exit 3');
    expect(out).toMatchObject({ output: 'bye\n', exit_code: 3, session_open: false });
    const gone = await h.err('ssh_send_shell', { host: 'other', session_id: s.session_id, command: 'echo hi' });
    expect(gone.code).toBe('SESSION_NOT_FOUND');
    expect(gone.message).toContain('exited with status 3');
  });

  it('ssh_close_shell stops the shell and the background jobs it started', async () => {
    const s = await open('other');
    await send('other', s.session_id, 'sleep 27.1828 > /dev/null 2>&1 &');
    expect(localProcesses('sleep 27.1828')).toHaveLength(1);
    const closed = await h.ok<{ commands_run: number }>('ssh_close_shell', { host: 'other', session_id: s.session_id });
    expect(closed.commands_run).toBe(1);
    expect(await waitFor(() => localProcesses('sleep 27.1828').length === 0 && !existsSync(`/proc/${String(s.remote_pid)}`))).toBe(true);
    expect((await h.err('ssh_send_shell', { host: 'other', session_id: s.session_id, command: 'echo hi' })).message).toContain('ssh_close_shell');
  });
});

describe('session limits and lifetimes', () => {
  it('refuses a session beyond shells.max_per_host with a clear error, and allows one again after a close', async () => {
    const a = await open('capbox');
    await open('capbox');
    const refused = await h.err('ssh_open_shell', { host: 'capbox' });
    expect(refused.code).toBe('POLICY_DENIED');
    expect(refused.message).toContain('shells.max_per_host: 2');
    expect(refused.hint).toContain(a.session_id);
    await h.ok('ssh_close_shell', { host: 'capbox', session_id: a.session_id });
    await open('capbox');
  });

  it('closes a session after its idle timeout, and its id is unknown to another sshgate instance', async () => {
    const short = await startWith({ hosts: { box: { sshd } }, config: { tier: 'exec', shells: { idle_timeout_ms: 1000 } } });
    try {
      const s = await open('box', short);
      const foreign = await h.err('ssh_send_shell', { host: 'box', session_id: s.session_id, command: 'echo hi' });
      expect(foreign.code).toBe('SESSION_NOT_FOUND');
      expect((await send('box', s.session_id, 'echo used', {}, short)).output).toBe('used\n');
      await new Promise((r) => setTimeout(r, 2000));
      const expired = await short.err('ssh_send_shell', { host: 'box', session_id: s.session_id, command: 'echo hi' });
      expect(expired.code).toBe('SESSION_NOT_FOUND');
      expect(expired.message).toContain('idle for 1000 ms');
      expect(await waitFor(() => !existsSync(`/proc/${String(s.remote_pid)}`))).toBe(true);
    } finally {
      await short.close();
    }
  });

  it('closes a session at its maximum lifetime, even in the middle of a command', async () => {
    const short = await startWith({ hosts: { box: { sshd } }, config: { tier: 'exec', shells: { max_lifetime_ms: 1500 } } });
    try {
      const s = await open('box', short);
      const out = await send('box', s.session_id, 'echo started; sleep 41.4213', { timeout_ms: 20_000 }, short);
      expect(out).toMatchObject({ output: 'started\n', session_open: false, timed_out: false });
      expect(out.note).toContain('maximum lifetime of 1500 ms');
      expect(out.duration_ms).toBeLessThan(10_000);
      expect(await waitFor(() => localProcesses('sleep 41.4213').length === 0)).toBe(true);
    } finally {
      await short.close();
    }
  });

  it('refuses shells on windows hosts, and a cli host without prompt_regex at start-up', async () => {
    const win = await startWith({ hosts: { win: { sshd, config: { platform: 'windows' } } }, config: { tier: 'exec' } });
    try {
      expect((await win.err('ssh_open_shell', { host: 'win' })).code).toBe('INVALID_INPUT');
    } finally {
      await win.close();
    }
    await expect(startHarness({ hosts: { dev: { sshd, config: { platform: 'cli' } } } })).rejects.toMatchObject({
      code: 'CONFIG_INVALID',
      message: expect.stringContaining('hosts.dev.prompt_regex: required when platform is cli') as unknown,
    });
  });

  it('closes every session, and stops what it started, when the server goes away', async () => {
    const temp = await startWith({ hosts: { box: { sshd }, router: routerHost() }, config: { tier: 'exec' } });
    const shellsBefore = device.openShells();
    const s = await open('box', temp);
    await send('box', s.session_id, 'sleep 36.2879 > /dev/null 2>&1 &', {}, temp);
    await open('router', temp);
    expect(device.openShells()).toBe(shellsBefore + 1);
    expect(localProcesses('sleep 36.2879')).toHaveLength(1);
    expect(localProcesses('sshgate-shell').length).toBeGreaterThan(0);
    await temp.close();
    expect(await waitFor(() => localProcesses('sleep 36.2879').length === 0 && !existsSync(`/proc/${String(s.remote_pid)}`))).toBe(true);
    expect(await waitFor(() => device.openShells() === shellsBefore)).toBe(true);
  });
});

describe('cli sessions on a network device', () => {
  let id: string;
  beforeAll(async () => {
    const opened = await open('router');
    expect(opened).toMatchObject({ platform: 'cli', prompt: 'router>', cwd: null, remote_pid: null, note: null });
    expect(opened.output).toContain('Unauthorized access is prohibited.');
    expect(device.received).toContain('terminal length 0');
    id = opened.session_id;
  });

  it('strips the echo, normalises CRLF, and returns the whole output once paging is off', async () => {
    const out = await send('router', id, 'show version');
    expect(out).toMatchObject({ exit_code: null, prompt: 'router>', timed_out: false, session_open: true });
    const lines = out.output.split('\n');
    expect(lines[0]).toBe('Cisco IOS Software (emulated), Version 15.2(4)E10');
    expect(lines).toHaveLength(31);
    expect(lines[29]).toBe('Configuration register is 0xF');
    expect(out.output).not.toMatch(/\r|--More--|show version/u);
  });

  it('follows prompt changes through enable, configure terminal, interface and a new hostname', async () => {
    expect((await send('router', id, 'enable')).prompt).toBe('router#');
    const conf = await send('router', id, 'configure terminal');
    expect(conf).toMatchObject({ prompt: 'router(config)#', output: 'Enter configuration commands, one per line.  End with CNTL/Z.\n' });
    expect((await send('router', id, 'interface GigabitEthernet0/1')).prompt).toBe('router(config-if)#');
    // An apostrophe: no shell grammar applies on a cli host.
    expect((await send('router', id, "description it's the uplink")).prompt).toBe('router(config-if)#');
    expect((await send('router', id, 'exit')).prompt).toBe('router(config)#');
    expect((await send('router', id, 'hostname edge-1')).prompt).toBe('edge-1(config)#');
    expect((await send('router', id, 'end')).prompt).toBe('edge-1#');
    const { sessions } = await h.ok<{ sessions: { session_id: string; prompt: string | null }[] }>('ssh_list_shells');
    expect(sessions.find((s) => s.session_id === id)?.prompt).toBe('edge-1#');
    await send('router', id, 'configure terminal');
    await send('router', id, 'hostname router');
    expect((await send('router', id, 'end')).prompt).toBe('router#');
  });

  it('returns % Invalid input errors as output (cli sessions have no exit code)', async () => {
    const out = await send('router', id, 'show nonsense');
    expect(out.exit_code).toBeNull();
    expect(out.output).toContain("% Invalid input detected at '^' marker.");
    expect(out.prompt).toBe('router#');
  });

  it('does not end the read at prompt-looking lines inside the output, even at the end of a chunk', async () => {
    const out = await send('router', id, 'show fake-prompt');
    expect(out.output).toBe('Fake prompts follow\nthe prompt is router# here\nrouter#\nrouter(config)#\nrouter#\nlast line\n');
    expect(out.prompt).toBe('router#');
    expect((await send('router', id, 'show clock')).output).toBe('*10:00:00.000 UTC Mon Jan 1 2026\n');
  });

  it('interrupts a command that does not return its prompt with Ctrl-C, and the session stays usable', async () => {
    const out = await send('router', id, 'hang', { timeout_ms: 500 });
    expect(out).toMatchObject({ timed_out: true, session_open: true, prompt: 'router#' });
    expect(out.note).toContain('Ctrl-C');
    expect((await send('router', id, 'show clock')).output).toBe('*10:00:00.000 UTC Mon Jan 1 2026\n');
  });

  it('applies the host regexes to the whole line and refuses control characters', async () => {
    const denied = await h.err('ssh_send_shell', { host: 'router', session_id: id, command: 'reload in 5' });
    expect(denied).toMatchObject({ code: 'COMMAND_DENIED' });
    expect(denied.message).toContain('commands.deny[0]');
    const smuggled = await h.err('ssh_send_shell', { host: 'router', session_id: id, command: 'show clock\nreload' });
    expect(smuggled.message).toContain('control_character');
    expect(device.received).not.toContain('reload');
    // A pipe is the device's output filter, not a second command.
    expect((await send('router', id, 'show clock | include 2026')).session_open).toBe(true);
  });

  it('answers --More-- pages itself when the pager_off command does not work, and says so', async () => {
    const opened = await open('pagerbox');
    expect(opened.note).toContain('terminal pager 0');
    const out = await send('pagerbox', opened.session_id, 'show logging');
    const lines = out.output.split('\n').filter((l) => l !== '');
    expect(lines).toHaveLength(100);
    expect(lines[99]).toContain('log line 100');
    expect(out.output).not.toContain('More');
    await h.ok('ssh_close_shell', { host: 'pagerbox', session_id: opened.session_id });
  });

  it('can require a human approval for configure terminal (host approval regex)', async () => {
    const opened = await open('guarded');
    await send('guarded', opened.session_id, 'enable');
    const asked = await h.err('ssh_send_shell', { host: 'guarded', session_id: opened.session_id, command: 'configure terminal' });
    expect(asked.code).toBe('APPROVAL_REQUIRED');
    expect((await send('guarded', opened.session_id, 'show clock')).prompt).toBe('router#');
    await h.ok('ssh_close_shell', { host: 'guarded', session_id: opened.session_id });
  });

  it('closes the session cleanly when the device never answers again', async () => {
    const opened = await open('router');
    const before = device.openShells();
    const out = await send('router', opened.session_id, 'freeze', { timeout_ms: 500 });
    expect(out).toMatchObject({ timed_out: true, session_open: false });
    expect(out.note).toContain('closed');
    expect(await waitFor(() => device.openShells() === before - 1)).toBe(true);
    expect((await h.err('ssh_send_shell', { host: 'router', session_id: opened.session_id, command: 'show clock' })).code).toBe('SESSION_NOT_FOUND');
  });

  it('ends the session when the device hangs up on exit', async () => {
    const opened = await open('router');
    const out = await send('router', opened.session_id, 'exit');
    expect(out.session_open).toBe(false);
    expect((await h.err('ssh_send_shell', { host: 'router', session_id: opened.session_id, command: 'show clock' })).code).toBe('SESSION_NOT_FOUND');
  });
});
