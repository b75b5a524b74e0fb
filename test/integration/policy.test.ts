// Policy against a hostile model, end to end: real sshd, real MCP client; every refusal runs nothing on the host.
import { mkdirSync, mkdtempSync, readFileSync, realpathSync, symlinkSync, writeFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Client, InMemoryTransport } from '@modelcontextprotocol/client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startSshd, type SshdInstance } from '../../src/testing/sshd.js';
import { startHarness, type Harness } from '../helpers/harness.js';
import { createServer } from '../../src/server/create-server.js';
import { selectTools } from '../../src/server/registry.js';
import { allTools } from '../../src/tools/index.js';
import { runDecide } from '../../src/cli/approve.js';
import { verifyAuditFile } from '../../src/audit/verify.js';

let sshd: SshdInstance;
let h: Harness;
let base: string;
let root: string;
let outside: string;

/** Lines of the sshd log that show a session was started (a channel reached the host). */
function sessions(): number {
  return readFileSync(sshd.logPath, 'utf8').split('\n').filter((l) => l.includes('Starting session')).length;
}
function connections(): number {
  return readFileSync(sshd.logPath, 'utf8').split('\n').filter((l) => l.startsWith('Connection from')).length;
}

beforeAll(async () => {
  sshd = await startSshd({ address: '127.0.0.11' });
  base = realpathSync(mkdtempSync(join(tmpdir(), 'sshgate-policy-')));
  root = join(base, 'root');
  outside = join(base, 'outside');
  mkdirSync(root);
  mkdirSync(outside);
  writeFileSync(join(outside, 'secret.txt'), 'top secret');
  writeFileSync(join(root, 'ok.txt'), 'fine');
  mkdirSync(join(root, 'sub'));
  h = await startHarness({
    hosts: {
      confined: { sshd, config: { roots: [root], restricted_paths: [join(root, '.env')], commands: { deny: ['^rm -rf /'] } } },
      allowlisted: { sshd, config: { commands: { allow: ['^echo [a-z ]+$', '^uname( -[a-z]+)?$'] } } },
      noexec: { sshd, config: { allow_execute: false, allow_sftp_write: false } },
      readonly: { sshd, config: { tier: 'read', labels: ['ro'] } },
      throttled: { sshd, config: { rate: { per_minute: 2 } } },
      vault: { sshd, config: { redact_paths: ['**/*.env', '**/secrets/**'] } },
    },
    config: {
      tier: 'exec',
      templates: {
        disk_usage: { command: 'df -h {path}', params: { path: '^/[\\w./-]*$' }, tier: 'read', description: 'Disk usage of a path' },
        tail_log: { command: 'tail -n {lines} {file}', params: { lines: '^\\d{1,4}$', file: '^/var/log/[\\w./-]+$' }, tier: 'read', hosts: ['ro'] },
        touch_file: { command: 'touch {file}', params: { file: '^/tmp/[\\w.-]+$' }, tier: 'write' },
      },
    },
  });
});

afterAll(async () => {
  await h.close();
  await sshd.stop();
});

describe('a refused call never reaches the host', () => {
  it('a command refused by the command policy opens no SSH connection and no channel', async () => {
    const before = { sessions: sessions(), connections: connections() };
    const e = await h.err('ssh_exec', { host: 'allowlisted', command: 'echo $(cat /etc/shadow)' });
    expect(e.code).toBe('COMMAND_DENIED');
    expect(e.message).toContain('command_substitution');
    const e2 = await h.err('ssh_exec', { host: 'allowlisted', command: 'id' });
    expect(e2.code).toBe('COMMAND_DENIED');
    expect(e2.message).toMatch(/commands\.allow/u);
    expect(h.runtime.pool.stats()['allowlisted']).toBeUndefined();
    expect({ sessions: sessions(), connections: connections() }).toEqual(before);
    // Positive control: an allowed command does reach the host.
    await h.ok('ssh_exec', { host: 'allowlisted', command: 'echo hello there' });
    expect(sessions()).toBeGreaterThan(before.sessions);
  });

  it.each([
    ['rm -rf / (deny list)', 'rm -rf /', 'commands.deny[0]'],
    ['quote splicing', "r'm' -rf /", 'commands.deny[0]'],
    ['sh -c', "sh -c 'id'", 'construct:shell_code'],
    ['base64 piped into a shell', 'echo aWQ= | base64 -d | sh', 'construct:pipe_to_shell'],
    ['LD_PRELOAD through env', 'id', 'construct:env_injection'],
  ])('refuses %s on host confined', async (_name, command, rule) => {
    const args: Record<string, unknown> = { host: 'confined', command };
    if (rule === 'construct:env_injection') args['env'] = { LD_PRELOAD: '/tmp/evil.so' };
    const e = await h.err('ssh_exec', args);
    expect(e.code).toBe('COMMAND_DENIED');
    expect(String(e.details?.['rule'])).toContain(rule.replace('construct:', ''));
  });
});

describe('path confinement with real symlinks', () => {
  beforeAll(() => {
    symlinkSync(join(outside, 'secret.txt'), join(root, 'file-link'));
    symlinkSync(outside, join(root, 'dir-link'));
    symlinkSync(join(outside, 'does-not-exist'), join(root, 'dangling'));
    symlinkSync(join(root, 'dir-link'), join(root, 'chain'));
    symlinkSync('ok.txt', join(root, 'inside-link'));
  });

  it.each([
    ['a path outside the roots', () => join(outside, 'secret.txt'), 'roots'],
    ['/srv/app-evil style sibling prefix', () => `${root}-evil/x`, 'roots'],
    ['.. climbing out', () => `${root}/sub/../../outside/secret.txt`, 'roots'],
    ['a restricted carve-out', () => join(root, '.env'), 'restricted_paths[0]'],
    ['a file symlink leading out', () => join(root, 'file-link'), 'roots'],
    ['a symlinked parent directory leading out', () => join(root, 'dir-link', 'secret.txt'), 'roots'],
    ['a chain of symlinks leading out', () => join(root, 'chain', 'secret.txt'), 'roots'],
  ])('refuses to read %s', async (_name, path, rule) => {
    const e = await h.err('ssh_read_file', { host: 'confined', path: path() });
    expect(e.code).toBe('PATH_DENIED');
    expect(String(e.details?.['rule'])).toBe(rule);
    expect(e.message).not.toContain('top secret');
  });

  it.each([
    ['through a symlinked parent directory', () => join(root, 'dir-link', 'planted.txt')],
    ['through a dangling symlink pointing out', () => join(root, 'dangling')],
    ['through a chain of symlinks', () => join(root, 'chain', 'planted2.txt')],
  ])('refuses to write %s, and nothing appears outside', async (_name, path) => {
    const e = await h.err('ssh_write_file', { host: 'confined', path: path(), content: 'planted' });
    expect(['PATH_DENIED', 'REMOTE_NOT_FOUND']).toContain(e.code);
    expect(existsSync(join(outside, 'planted.txt'))).toBe(false);
    expect(existsSync(join(outside, 'planted2.txt'))).toBe(false);
    expect(existsSync(join(outside, 'does-not-exist'))).toBe(false);
  });

  it('follows a symlink that stays inside the roots', async () => {
    const out = await h.ok<{ content: string }>('ssh_read_file', { host: 'confined', path: join(root, 'inside-link') });
    expect(out.content).toBe('fine');
  });

  it('confines the cwd of ssh_exec to the roots', async () => {
    const e = await h.err('ssh_exec', { host: 'confined', command: 'ls', cwd: outside });
    expect(e.code).toBe('PATH_DENIED');
    const ok = await h.ok<{ stdout: string }>('ssh_exec', { host: 'confined', command: 'pwd', cwd: root });
    expect(ok.stdout.trim()).toBe(root);
  });
});

describe('per-host toggles', () => {
  it('allow_execute: false turns off ssh_exec with a refusal naming the key; reading still works', async () => {
    const e = await h.err('ssh_exec', { host: 'noexec', command: 'id' });
    expect(e.code).toBe('POLICY_DENIED');
    expect(e.message).toContain('hosts.noexec.allow_execute');
    const w = await h.err('ssh_write_file', { host: 'noexec', path: join(base, 'x.txt'), content: 'x' });
    expect(w.message).toContain('hosts.noexec.allow_sftp_write');
    await h.ok('ssh_read_file', { host: 'noexec', path: join(root, 'ok.txt') });
  });
});

describe('templates', () => {
  it('a read-tier host runs a read-tier template with a validated, quoted parameter', async () => {
    const out = await h.ok<{ exit_code: number; command: string; stdout: string }>('ssh_run_template', { host: 'readonly', template: 'disk_usage', params: { path: '/' } });
    expect(out.exit_code).toBe(0);
    expect(out.command).toBe('df -h /');
    expect(out.stdout).toMatch(/Filesystem/u);
  });

  it.each([
    ['a value that breaks out of the regex', { path: '/; id' }, 'must match'],
    ['a value starting with -', { path: '-x' }, 'may not start with "-"'],
    ['an unknown parameter', { path: '/', extra: 'x' }, 'has no parameter'],
    ['a missing parameter', {}, 'is required'],
    ['a newline', { path: '/\nid' }, 'control character'],
  ])('refuses %s', async (_name, params, message) => {
    const e = await h.err('ssh_run_template', { host: 'readonly', template: 'disk_usage', params });
    expect(e.code).toBe('INVALID_INPUT');
    expect(e.message).toContain(message);
  });

  it('refuses a template above the host tier, and one not offered on the host', async () => {
    const e = await h.err('ssh_run_template', { host: 'readonly', template: 'touch_file', params: { file: '/tmp/x' } });
    expect(e.code).toBe('POLICY_DENIED');
    expect(e.message).toContain('needs tier write');
    const e2 = await h.err('ssh_run_template', { host: 'confined', template: 'tail_log', params: { lines: '5', file: '/var/log/dpkg.log' } });
    expect(e2.code).toBe('INVALID_INPUT');
    expect(e2.message).toContain('not offered');
  });

  it('ssh_list_hosts shows the templates each host offers', async () => {
    const out = await h.ok<{ hosts: { alias: string; templates: { name: string; params: string[] }[] }[] }>('ssh_list_hosts');
    const ro = out.hosts.find((x) => x.alias === 'readonly');
    expect(ro?.templates.map((t) => t.name)).toEqual(['disk_usage', 'tail_log', 'touch_file']);
    expect(out.hosts.find((x) => x.alias === 'confined')?.templates.map((t) => t.name)).toEqual(['disk_usage', 'touch_file']);
    expect(ro?.templates[1]?.params).toEqual(['lines', 'file']);
  });
});

describe('rate limits', () => {
  it('refuses the call past per_minute with RATE_LIMITED and when to retry', async () => {
    await h.ok('ssh_get_file_info', { host: 'throttled', path: root });
    await h.ok('ssh_get_file_info', { host: 'throttled', path: root });
    const e = await h.err('ssh_get_file_info', { host: 'throttled', path: root });
    expect(e.code).toBe('RATE_LIMITED');
    expect(e.hint).toMatch(/retry after \d+ ms/u);
  });
});

describe('redaction', () => {
  it('secrets in output are redacted, and a write carrying a redaction marker is refused', async () => {
    const file = join(root, 'app.conf');
    writeFileSync(file, 'user=app\npassword=hunter2-very-secret\n');
    const out = await h.ok<{ content: string }>('ssh_read_file', { host: 'confined', path: file });
    expect(out.content).not.toContain('hunter2');
    expect(out.content).toMatch(/password=<redacted:/u);
    const e = await h.err('ssh_write_file', { host: 'confined', path: file, content: out.content });
    expect(e.code).toBe('INVALID_INPUT');
    expect(e.message).toContain('redaction marker');
    expect(readFileSync(file, 'utf8')).toContain('hunter2-very-secret');
  });

  it('redact: true gives digest markers that tell two secrets apart; redact_paths forces it', async () => {
    const file = join(root, 'two.conf');
    writeFileSync(file, 'password=alpha-secret-1\napi_key=beta-secret-2\nother_password=alpha-secret-1\n');
    const out = await h.ok<{ content: string }>('ssh_read_file', { host: 'confined', path: file, redact: true });
    const markers = out.content.match(/<redacted:sha256:[0-9a-f]{8} len:\d+>/gu) ?? [];
    expect(markers).toHaveLength(3);
    expect(markers[0]).toBe(markers[2]);
    expect(markers[0]).not.toBe(markers[1]);
    expect(out.content).not.toContain('secret-1');
    mkdirSync(join(base, 'secrets'), { recursive: true });
    writeFileSync(join(base, 'secrets', 'db.txt'), 'password=gamma-secret-3\n');
    const forced = await h.ok<{ content: string }>('ssh_read_file', { host: 'vault', path: join(base, 'secrets', 'db.txt') });
    expect(forced.content).toMatch(/^password=<redacted:sha256:[0-9a-f]{8} len:14>\n$/u);
    const plain = await h.ok<{ content: string }>('ssh_read_file', { host: 'confined', path: file });
    expect(plain.content).toContain('password=<redacted:password>');
  });

  it('terminal control sequences are stripped from command output', async () => {
    const out = await h.ok<{ stdout: string }>('ssh_exec', { host: 'allowlisted', command: 'echo abc' });
    expect(out.stdout).toBe('abc\n');
    const raw = await h.ok<{ stdout: string }>('ssh_exec', { host: 'confined', command: "printf '\\033]52;c;ZXZpbA==\\007ok\\033[31mred\\033[0m\\n'" });
    expect(raw.stdout).toBe('okred\n');
  });
});

describe('human approval', () => {
  let ah: Harness;
  beforeAll(async () => {
    ah = await startHarness({
      hosts: { guarded: { sshd, config: { approval: ['destructive', '^systemctl restart '] } } },
      config: { tier: 'exec' },
    });
  });
  afterAll(async () => {
    await ah.close();
  });

  it('terminal channel: refusal with an id, nothing runs; the operator approves; the same call with approval_id runs once', async () => {
    const marker = join(base, `approved-${Date.now()}`);
    const call = { host: 'guarded', command: `touch ${marker}` };
    const first = await ah.err('ssh_exec', call);
    expect(first.code).toBe('APPROVAL_REQUIRED');
    const id = String(first.details?.['approval_id']);
    expect(first.message).toContain(`sshgate approve ${id}`);
    expect(existsSync(marker)).toBe(false);

    // The id alone approves nothing.
    expect((await ah.err('ssh_exec', { ...call, approval_id: id })).code).toBe('APPROVAL_REQUIRED');
    // The operator's terminal command (same config) approves it.
    const lines: string[] = [];
    expect(await runDecide({ config: ah.configPath }, id, 'approved', true, (l) => lines.push(l))).toBe(0);
    expect(lines.join('\n')).toContain(`touch ${marker}`);
    // A different call cannot use the approval.
    const other = await ah.err('ssh_exec', { host: 'guarded', command: `touch ${marker}-other`, approval_id: id });
    expect(other.code).toBe('APPROVAL_DENIED');
    expect(existsSync(`${marker}-other`)).toBe(false);
    // The approved call runs, exactly once.
    await ah.ok('ssh_exec', { ...call, approval_id: id });
    expect(existsSync(marker)).toBe(true);
    expect((await ah.err('ssh_exec', { ...call, approval_id: id })).code).toBe('APPROVAL_DENIED');

    const records = await ah.auditLines();
    const approved = records.find((r) => r['decision'] === 'approved');
    expect(approved).toMatchObject({ tool: 'ssh_exec', rule: 'hosts.guarded.approval: destructive' });
    expect(String(approved?.['approved_by'])).toMatch(/^cli:/u);
    expect((await verifyAuditFile(ah.auditPath)).ok).toBe(true);
  });

  it('a denied approval is refused', async () => {
    const first = await ah.err('ssh_exec', { host: 'guarded', command: 'echo nope' });
    const id = String(first.details?.['approval_id']);
    expect(await runDecide({ config: ah.configPath }, id, 'denied', true, () => undefined)).toBe(0);
    const e = await ah.err('ssh_exec', { host: 'guarded', command: 'echo nope', approval_id: id });
    expect(e.code).toBe('APPROVAL_DENIED');
  });

  it('a non-destructive read needs no approval', async () => {
    await ah.ok('ssh_read_file', { host: 'guarded', path: join(root, 'ok.txt') });
  });

  describe.each([
    ['2025-era client (the SDK shim sends elicitation/create)', undefined],
    ['2026-07-28 client (input-required result)', { mode: { pin: '2026-07-28' } }],
  ] as const)('client elicitation, %s', (_name, versionNegotiation) => {
    async function clientThatAnswers(approve: boolean, seen: string[]): Promise<Client> {
      const tools = selectTools(allTools, ah.runtime.loaded.config);
      const client = new Client(
        { name: 'approving-client', version: '1.0.0' },
        { capabilities: { elicitation: { form: {} } }, ...(versionNegotiation === undefined ? {} : { versionNegotiation }) },
      );
      client.setRequestHandler('elicitation/create', (request) => {
        seen.push(request.params.message);
        return approve ? { action: 'accept', content: { approve: true } } : { action: 'decline' };
      });
      if (versionNegotiation === undefined) {
        const [ct, st] = InMemoryTransport.createLinkedPair();
        await createServer(tools, ah.runtime).connect(st);
        await client.connect(ct);
      } else {
        const { StdioClientTransport } = await import('@modelcontextprotocol/client/stdio');
        await client.connect(new StdioClientTransport({ command: process.execPath, args: [join(import.meta.dirname, '..', '..', 'dist', 'main.js'), '--config', ah.configPath], stderr: 'ignore' }));
      }
      return client;
    }

    it('asks the human with the exact command and the rule, runs only after acceptance', async () => {
      const seen: string[] = [];
      const marker = join(base, `elicited-${Math.random().toString(36).slice(2)}`);
      const client = await clientThatAnswers(true, seen);
      try {
        const result = await client.callTool({ name: 'ssh_exec', arguments: { host: 'guarded', command: `systemctl restart nothing 2>/dev/null; touch ${marker}` } });
        expect(result.isError).not.toBe(true);
        expect(seen).toHaveLength(1);
        expect(seen[0]).toContain(`touch ${marker}`);
        expect(seen[0]).toContain('hosts.guarded.approval');
        expect(existsSync(marker)).toBe(true);
      } finally {
        await client.close();
      }
    });

    it('a declined approval runs nothing and is recorded as refused-approval', async () => {
      const seen: string[] = [];
      const marker = join(base, `declined-${Math.random().toString(36).slice(2)}`);
      const client = await clientThatAnswers(false, seen);
      try {
        const result = await client.callTool({ name: 'ssh_exec', arguments: { host: 'guarded', command: `touch ${marker}` } });
        expect(result.isError).toBe(true);
        expect((result.structuredContent as { error: { code: string } }).error.code).toBe('APPROVAL_DENIED');
        expect(existsSync(marker)).toBe(false);
      } finally {
        await client.close();
      }
    });
  });
});

describe('audit', () => {
  it('records every decision with its rule, keeps secrets out, and the chain verifies after a mixed run', async () => {
    const withToken = await h.ok<{ stdout: string }>('ssh_exec', { host: 'confined', command: 'echo token=ghp_abcdefghijklmnopqrstuvwxyz0123456789' });
    expect(withToken.stdout).not.toContain('ghp_abcdefghijklmnopqrstuvwxyz0123456789');
    const records = await h.auditLines();
    expect(records.some((r) => r['decision'] === 'denied' && r['result'] === 'COMMAND_DENIED')).toBe(true);
    expect(records.some((r) => r['decision'] === 'denied' && r['result'] === 'PATH_DENIED' && r['rule'] === 'roots')).toBe(true);
    expect(records.some((r) => r['decision'] === 'allowed' && r['result'] === 'ok')).toBe(true);
    const text = readFileSync(h.auditPath, 'utf8');
    expect(text).not.toContain('hunter2-very-secret');
    expect(text).not.toContain('ghp_abcdefghijklmnopqrstuvwxyz0123456789');
    expect((await verifyAuditFile(h.auditPath)).ok).toBe(true);
  });
});
