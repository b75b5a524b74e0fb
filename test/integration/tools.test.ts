// Every issue-2 tool against a real OpenSSH sshd, through a real MCP client.
import { execFileSync } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startSshd, type SshdInstance } from '../../src/testing/sshd.js';
import { startHarness, type Harness } from '../helpers/harness.js';
import { mkdtempSync, readFileSync, statSync, writeFileSync, symlinkSync, mkdirSync, readdirSync, chmodSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createHash } from 'node:crypto';
import { localProcesses, waitFor } from '../helpers/wait.js';

let sshd: SshdInstance;
let h: Harness;
let work: string;

beforeAll(async () => {
  sshd = await startSshd({ address: '127.0.0.1' });
  work = mkdtempSync(join(tmpdir(), 'sshgate-work-'));
  h = await startHarness({
    hosts: {
      web1: { sshd, config: { labels: ['prod', 'web'] } },
      readonly1: { sshd, config: { tier: 'read' } },
    },
    config: { tier: 'exec' },
  });
});

afterAll(async () => {
  await h.close();
  await sshd.stop();
});

describe('ssh_list_hosts', () => {
  it('lists the configured hosts with their effective tier and labels, and no secrets', async () => {
    const out = await h.ok<{ hosts: { alias: string; tier: string; labels: string[] }[] }>('ssh_list_hosts');
    expect(out.hosts.map((x) => [x.alias, x.tier])).toEqual([
      ['web1', 'exec'],
      ['readonly1', 'read'],
    ]);
    expect(out.hosts[0]?.labels).toEqual(['prod', 'web']);
    expect(JSON.stringify(out)).not.toContain(sshd.clientKeyPath);
  });

  it('filters by label', async () => {
    const out = await h.ok<{ hosts: { alias: string }[] }>('ssh_list_hosts', { label: 'web' });
    expect(out.hosts.map((x) => x.alias)).toEqual(['web1']);
  });
});

describe('ssh_ping_host', () => {
  it('reports latency, the SHA256 host key fingerprint as ssh-keygen prints it, and the banner', async () => {
    const out = await h.ok<{ reachable: boolean; latency_ms: number; fingerprint: string; banner: string }>('ssh_ping_host', { host: 'web1' });
    expect(out.reachable).toBe(true);
    expect(out.latency_ms).toBeGreaterThan(0);
    const keygen = execFileSync('ssh-keygen', ['-lf', `${sshd.hostKeyPath}.pub`], { encoding: 'utf8' });
    expect(keygen).toContain(out.fingerprint);
    expect(out.banner).toMatch(/^SSH-2\.0-OpenSSH_/u);
  });

  it('refuses an alias that is not configured, naming the known ones', async () => {
    const e = await h.err('ssh_ping_host', { host: 'nope' });
    expect(e.code).toBe('HOST_NOT_CONFIGURED');
    expect(e.message).toContain('web1');
  });
});

describe('ssh_get_host_info', () => {
  it('reports OS, kernel, CPUs, memory and disks of the host', async () => {
    const out = await h.ok<{ kernel: string; arch: string; cpus: number; memory: { total_bytes: number }; disks: unknown[]; load: number[] }>(
      'ssh_get_host_info',
      { host: 'web1' },
    );
    expect(out.kernel).toBe(execFileSync('uname', ['-r'], { encoding: 'utf8' }).trim());
    expect(out.arch).toBe(execFileSync('uname', ['-m'], { encoding: 'utf8' }).trim());
    expect(out.cpus).toBeGreaterThan(0);
    expect(out.memory.total_bytes).toBeGreaterThan(0);
    expect(out.load).toHaveLength(3);
    expect(out.disks.length).toBeGreaterThan(0);
  });
});

describe('file tools', () => {
  it('lists a directory sorted, hides dotfiles unless all, paginates, and shows symlink targets', async () => {
    const dir = join(work, 'list');
    mkdirSync(dir);
    for (const name of ['b.txt', 'a.txt', '.hidden', 'c.txt']) writeFileSync(join(dir, name), name);
    symlinkSync('a.txt', join(dir, 'link'));
    chmodSync(join(dir, 'a.txt'), 0o640);
    const page1 = await h.ok<{ entries: { name: string; mode: string; permissions: string; type: string; link_target: string | null }[]; has_more: boolean; total: number }>(
      'ssh_list_directory',
      { host: 'web1', path: dir, limit: 2 },
    );
    expect(page1.entries.map((e) => e.name)).toEqual(['a.txt', 'b.txt']);
    expect(page1.entries[0]?.mode).toBe('0640');
    expect(page1.entries[0]?.permissions).toBe('rw-r-----');
    expect(page1.total).toBe(4);
    expect(page1.has_more).toBe(true);
    const page2 = await h.ok<{ entries: { name: string; type: string; link_target: string | null }[]; has_more: boolean }>('ssh_list_directory', {
      host: 'web1',
      path: dir,
      offset: 2,
      limit: 2,
    });
    expect(page2.entries.map((e) => [e.name, e.type, e.link_target])).toEqual([
      ['c.txt', 'file', null],
      ['link', 'symlink', 'a.txt'],
    ]);
    expect(page2.has_more).toBe(false);
    const all = await h.ok<{ entries: { name: string }[] }>('ssh_list_directory', { host: 'web1', path: dir, all: true });
    expect(all.entries.map((e) => e.name)).toContain('.hidden');
  });

  it('stats a file and a symlink', async () => {
    const dir = join(work, 'stat');
    mkdirSync(dir);
    writeFileSync(join(dir, 'f'), 'hello');
    symlinkSync('f', join(dir, 'l'));
    const f = await h.ok<{ type: string; size: number }>('ssh_get_file_info', { host: 'web1', path: join(dir, 'f') });
    expect([f.type, f.size]).toEqual(['file', 5]);
    const l = await h.ok<{ type: string; target_type: string; link_target: string }>('ssh_get_file_info', { host: 'web1', path: join(dir, 'l') });
    expect([l.type, l.target_type, l.link_target]).toEqual(['symlink', 'file', 'f']);
    const e = await h.err('ssh_get_file_info', { host: 'web1', path: join(dir, 'missing') });
    expect(e.code).toBe('REMOTE_NOT_FOUND');
  });

  it('reads a whole file with its size and sha256, a line range, and a byte range with continuation', async () => {
    const file = join(work, 'lines.txt');
    const text = Array.from({ length: 1000 }, (_, i) => `line ${i + 1}`).join('\n') + '\n';
    writeFileSync(file, text);
    const whole = await h.ok<{ content: string; size: number; sha256: string; truncated: boolean }>('ssh_read_file', { host: 'web1', path: file });
    expect(whole.content).toBe(text);
    expect(whole.size).toBe(Buffer.byteLength(text));
    expect(whole.sha256).toBe(createHash('sha256').update(text).digest('hex'));
    expect(whole.truncated).toBe(false);

    const range = await h.ok<{ content: string; start_line: number; end_line: number; sha256: string }>('ssh_read_file', {
      host: 'web1',
      path: file,
      start_line: 10,
      line_count: 3,
    });
    expect(range.content).toBe('line 10\nline 11\nline 12\n');
    expect([range.start_line, range.end_line]).toEqual([10, 12]);
    expect(range.sha256).toBe(whole.sha256);

    const bytes = await h.ok<{ content: string; truncated: boolean; next_offset: number }>('ssh_read_file', { host: 'web1', path: file, max_bytes: 100 });
    expect(bytes.content).toBe(text.slice(0, 100));
    expect(bytes.truncated).toBe(true);
    expect(bytes.next_offset).toBe(100);
    const next = await h.ok<{ content: string }>('ssh_read_file', { host: 'web1', path: file, offset: 100, max_bytes: 20 });
    expect(next.content).toBe(text.slice(100, 120));
  });

  it('reads a zero-size pseudo-file such as /proc/cpuinfo completely (not as empty)', async () => {
    const out = await h.ok<{ content: string }>('ssh_read_file', { host: 'web1', path: '/proc/cpuinfo' });
    expect(out.content).toContain('processor');
  });

  it('refuses to return a binary file as text, and returns it as base64 when asked', async () => {
    const file = join(work, 'bin');
    writeFileSync(file, Buffer.from([0, 1, 2, 255]));
    expect((await h.err('ssh_read_file', { host: 'web1', path: file })).code).toBe('INVALID_INPUT');
    const out = await h.ok<{ content: string }>('ssh_read_file', { host: 'web1', path: file, encoding: 'base64' });
    expect(Buffer.from(out.content, 'base64')).toEqual(Buffer.from([0, 1, 2, 255]));
  });

  it('writes a new file atomically, replaces an existing one keeping its mode, and leaves no temp file', async () => {
    const dir = join(work, 'write');
    mkdirSync(dir);
    const file = join(dir, 'config.ini');
    const created = await h.ok<{ created: boolean; bytes: number; sha256: string }>('ssh_write_file', { host: 'web1', path: file, content: 'a=1\n' });
    expect(created.created).toBe(true);
    expect(readFileSync(file, 'utf8')).toBe('a=1\n');
    chmodSync(file, 0o600);
    const replaced = await h.ok<{ created: boolean; mode: string }>('ssh_write_file', { host: 'web1', path: file, content: 'a=2\n' });
    expect(replaced.created).toBe(false);
    expect(replaced.mode).toBe('0600');
    expect(statSync(file).mode & 0o777).toBe(0o600);
    expect(readFileSync(file, 'utf8')).toBe('a=2\n');
    expect(readdirSync(dir)).toEqual(['config.ini']);
  });

  it('refuses a write whose expected_sha256 no longer matches, leaving the file as it was', async () => {
    const file = join(work, 'guarded.txt');
    writeFileSync(file, 'v1');
    const read = await h.ok<{ sha256: string }>('ssh_read_file', { host: 'web1', path: file });
    writeFileSync(file, 'v2 by someone else');
    const e = await h.err('ssh_write_file', { host: 'web1', path: file, content: 'v3', expected_sha256: read.sha256 });
    expect(e.code).toBe('REMOTE_FAILURE');
    expect(e.message).toContain('changed since it was read');
    expect(readFileSync(file, 'utf8')).toBe('v2 by someone else');
    await h.ok('ssh_write_file', { host: 'web1', path: file, content: 'v3', expected_sha256: createHash('sha256').update('v2 by someone else').digest('hex') });
    expect(readFileSync(file, 'utf8')).toBe('v3');
  });

  it('a failed write (missing parent directory) leaves nothing behind', async () => {
    const e = await h.err('ssh_write_file', { host: 'web1', path: join(work, 'no-such-dir', 'f'), content: 'x' });
    expect(e.code).toBe('REMOTE_NOT_FOUND');
  });
});

describe('ssh_exec', () => {
  it('returns stdout, stderr and the exit status; a non-zero exit is data, not an error', async () => {
    const out = await h.ok<{ exit_code: number; stdout: string; stderr: string; timed_out: boolean }>('ssh_exec', {
      host: 'web1',
      command: 'echo out; echo err >&2; exit 3',
    });
    expect(out).toMatchObject({ exit_code: 3, stdout: 'out\n', stderr: 'err\n', timed_out: false });
  });

  it('closes stdin at once (cat returns), and feeds stdin when given', async () => {
    expect((await h.ok<{ stdout: string; exit_code: number }>('ssh_exec', { host: 'web1', command: 'cat' })).exit_code).toBe(0);
    const out = await h.ok<{ stdout: string }>('ssh_exec', { host: 'web1', command: 'tr a-z A-Z', stdin: 'hello' });
    expect(out.stdout).toBe('HELLO');
  });

  it('runs in cwd with env values quoted safely (no injection through a value)', async () => {
    const out = await h.ok<{ stdout: string }>('ssh_exec', {
      host: 'web1',
      command: 'pwd; printf "%s\\n" "$GREETING"',
      cwd: work,
      env: { GREETING: "it's $(id) `x`; rm -rf /" },
    });
    expect(out.stdout).toBe(`${work}\nit's $(id) \`x\`; rm -rf /\n`);
  });

  it('reports a cwd that does not exist with exit status 126', async () => {
    const out = await h.ok<{ exit_code: number; stderr: string }>('ssh_exec', { host: 'web1', command: 'true', cwd: '/nonexistent-dir-xyz' });
    expect(out.exit_code).toBe(126);
  });

  it('a timeout stops the remote process group: nothing is left running on the host', async () => {
    const marker = `sleep 97.${Date.now() % 100000}`;
    const started = Date.now();
    const e = await h.err('ssh_exec', { host: 'web1', command: `${marker} & ${marker}; echo never`, timeout_ms: 1000 });
    expect(e.code).toBe('COMMAND_TIMEOUT');
    expect(e.details?.['timed_out']).toBe(true);
    expect(e.details?.['stopped']).toBe(true);
    expect(Date.now() - started).toBeLessThan(15_000);
    expect(await waitFor(() => localProcesses(marker).length === 0)).toBe(true);
  });

  it('MCP cancellation stops the remote command too', async () => {
    const marker = `sleep 96.${Date.now() % 100000}`;
    const controller = new AbortController();
    const pending = h.call('ssh_exec', { host: 'web1', command: marker, timeout_ms: 60_000 }, { signal: controller.signal }).catch((err: unknown) => err);
    expect(await waitFor(() => localProcesses(marker).length > 0)).toBe(true);
    controller.abort();
    await pending;
    expect(await waitFor(() => localProcesses(marker).length === 0)).toBe(true);
  });

  it('returns at exit plus a short grace when a background child keeps stdout open', async () => {
    const marker = `sleep 95.${Date.now() % 100000}`;
    const started = Date.now();
    const out = await h.ok<{ exit_code: number; stdout: string }>('ssh_exec', { host: 'web1', command: `echo started; ${marker} &` });
    expect(out.exit_code).toBe(0);
    expect(out.stdout).toBe('started\n');
    expect(Date.now() - started).toBeLessThan(10_000);
    execFileSync('pkill', ['-f', marker]); // our own test process, by its unique marker
  });

  it('caps each stream, keeping head and tail with a marker', async () => {
    const out = await h.ok<{ stdout: string; truncated: boolean; stdout_bytes: number }>('ssh_exec', {
      host: 'web1',
      command: 'seq 1 200000',
      max_output_bytes: 4096,
    });
    expect(out.truncated).toBe(true);
    expect(out.stdout.startsWith('1\n2\n3\n')).toBe(true);
    expect(out.stdout.endsWith('199999\n200000\n')).toBe(true);
    expect(out.stdout).toMatch(/bytes omitted/u);
    expect(out.stdout_bytes).toBe(Buffer.byteLength(Array.from({ length: 200000 }, (_, i) => `${i + 1}\n`).join('')));
  });
});

describe('tiers', () => {
  it('refuses a call above the host tier with POLICY_DENIED naming the tier and the key, and runs nothing', async () => {
    const e = await h.err('ssh_exec', { host: 'readonly1', command: 'touch /tmp/should-not-exist' });
    expect(e.code).toBe('POLICY_DENIED');
    expect(e.message).toContain('needs tier exec');
    expect(e.message).toContain('at most read');
    expect(e.hint).toContain('hosts.readonly1.tier');
  });

  it('does not offer tools above the global tier at all', async () => {
    const readOnly = await startHarness({ hosts: { web1: { sshd } }, config: { tier: 'read' } });
    try {
      const names = (await readOnly.client.listTools()).tools.map((t) => t.name);
      expect(names).toContain('ssh_read_file');
      expect(names).not.toContain('ssh_write_file');
      expect(names).not.toContain('ssh_exec');
    } finally {
      await readOnly.close();
    }
  });

  it('derives annotations from the tier and effects', async () => {
    const tools = (await h.client.listTools()).tools;
    const read = tools.find((t) => t.name === 'ssh_read_file');
    const exec = tools.find((t) => t.name === 'ssh_exec');
    expect(read?.annotations).toMatchObject({ readOnlyHint: true, destructiveHint: false, openWorldHint: true });
    expect(exec?.annotations).toMatchObject({ readOnlyHint: false, destructiveHint: true });
    expect(exec?.outputSchema).toBeDefined();
  });
});

describe('audit', () => {
  it('writes one hash-chained record per call, refusals included, and the chain verifies', async () => {
    const before = (await h.auditLines()).length;
    await h.ok('ssh_list_hosts');
    await h.err('ssh_exec', { host: 'readonly1', command: 'id' });
    const lines = await h.auditLines();
    expect(lines.length).toBe(before + 2);
    const [allowed, denied] = lines.slice(-2);
    expect(allowed).toMatchObject({ tool: 'ssh_list_hosts', decision: 'allowed', result: 'ok' });
    expect(denied).toMatchObject({ tool: 'ssh_exec', host: 'readonly1', decision: 'denied', rule: 'tier', result: 'POLICY_DENIED' });
    expect((denied?.['args'] as { command: string }).command).toBe('id');
    const { verifyAuditFile } = await import('../../src/audit/verify.js');
    expect((await verifyAuditFile(h.auditPath)).ok).toBe(true);
  });
});

describe('ssh_check_host, resources and prompts', () => {
  it('reports the effective policy, the tools the host allows and the remote capabilities', async () => {
    const out = await h.ok<{
      tier: string;
      tools: { name: string; allowed: boolean; reason: string | null }[];
      capabilities: { remote_user: string; sudo: string; commands: string[] };
    }>('ssh_check_host', { host: 'readonly1' });
    expect(out.tier).toBe('read');
    const exec = out.tools.find((t) => t.name === 'ssh_exec');
    expect(exec).toMatchObject({ allowed: false });
    expect(exec?.reason).toContain('needs tier exec');
    expect(out.tools.find((t) => t.name === 'ssh_read_file')?.allowed).toBe(true);
    expect(out.capabilities.remote_user).toBe(sshd.user);
    expect(out.capabilities.commands).toContain('bash');
  });

  it('serves the host inventory and server info as resources, without secrets', async () => {
    const list = await h.client.listResources();
    expect(list.resources.map((r) => r.uri)).toEqual(expect.arrayContaining(['sshgate://server-info', 'sshgate://hosts', 'sshgate://hosts/web1']));
    const host = await h.client.readResource({ uri: 'sshgate://hosts/web1' });
    const text = (host.contents[0] as { text: string }).text;
    expect(JSON.parse(text)).toMatchObject({ alias: 'web1', tier: 'exec' });
    expect(text).not.toContain(sshd.clientKeyPath);
    const infoContents = (await h.client.readResource({ uri: 'sshgate://server-info' })).contents[0] as { text: string };
    const info = JSON.parse(infoContents.text) as { tools: string[] };
    expect(info.tools).toContain('ssh_exec');
  });

  it('offers runbook prompts that name the host', async () => {
    const { prompts } = await h.client.listPrompts();
    expect(prompts.map((p) => p.name)).toEqual(['diagnose-full-disk', 'investigate-failing-service', 'change-config-safely']);
    const p = await h.client.getPrompt({ name: 'investigate-failing-service', arguments: { host: 'web1', service: 'nginx' } });
    expect(JSON.stringify(p.messages)).toContain('journalctl -u nginx');
  });
});
