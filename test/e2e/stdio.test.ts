// Spawns the built CLI over stdio as an MCP client would, in both protocol eras.
import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, writeFileSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { Client } from '@modelcontextprotocol/client';
import { StdioClientTransport } from '@modelcontextprotocol/client/stdio';
import { stringify } from 'yaml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startSshd, type SshdInstance } from '../../src/testing/sshd.js';

const run = promisify(execFile);
const main = join(import.meta.dirname, '..', '..', 'dist', 'main.js');
let sshd: SshdInstance;
let dir: string;
let configPath: string;

beforeAll(async () => {
  if (!existsSync(main)) throw new Error('dist/main.js is missing: run `npm run build` first (npm test does it)');
  sshd = await startSshd({ address: '127.0.0.10' });
  dir = mkdtempSync(join(tmpdir(), 'sshgate-e2e-'));
  configPath = join(dir, 'config.yaml');
  writeFileSync(
    configPath,
    stringify({
      tier: 'exec',
      known_hosts: { file: sshd.knownHostsPath },
      audit: { path: join(dir, 'audit.jsonl') },
      hosts: { box: { hostname: sshd.address, port: sshd.port, user: sshd.user, identity_file: sshd.clientKeyPath } },
    }),
  );
});
afterAll(async () => {
  await sshd.stop();
});

describe.each([
  ['2025-era client (initialize)', undefined],
  ['2026-07-28 client (server/discover, per-request _meta)', { mode: { pin: '2026-07-28' } }],
] as const)('built sshgate over stdio, %s', (_name, versionNegotiation) => {
  it('lists the tools and runs a command on a real host', async () => {
    const transport = new StdioClientTransport({ command: process.execPath, args: [main, '--config', configPath], stderr: 'pipe' });
    const client = new Client({ name: 'e2e', version: '1.0.0' }, versionNegotiation === undefined ? {} : { versionNegotiation });
    await client.connect(transport);
    try {
      const { tools } = await client.listTools();
      const names = tools.map((t) => t.name);
      expect(names).toEqual(expect.arrayContaining(['ssh_list_hosts', 'ssh_read_file', 'ssh_write_file', 'ssh_exec', 'ssh_broadcast']));
      expect(names).not.toContain('ssh_sudo_exec');
      const result = await client.callTool({ name: 'ssh_exec', arguments: { host: 'box', command: 'echo e2e-ok' } });
      expect(result.isError).not.toBe(true);
      expect((result.structuredContent as { stdout: string }).stdout).toBe('e2e-ok\n');
    } finally {
      await client.close();
    }
  });
});

describe('runtime of the built server (what transfer speed depends on)', () => {
  async function runtimeOf(env?: Record<string, string>): Promise<{ runtime: Record<string, unknown> }> {
    const transport = new StdioClientTransport({ command: process.execPath, args: [main, '--config', configPath], stderr: 'pipe', ...(env === undefined ? {} : { env: { ...(process.env as Record<string, string>), ...env } }) });
    const client = new Client({ name: 'e2e', version: '1.0.0' });
    await client.connect(transport);
    try {
      const info = (await client.readResource({ uri: 'sshgate://server-info' })).contents[0] as { text: string };
      return { runtime: (JSON.parse(info.text) as { runtime: Record<string, unknown> }).runtime };
    } finally {
      await client.close();
    }
  }

  it('relaunches itself with --single-threaded-gc in the same process, and ssh2 runs its native crypto binding', async () => {
    // The answer comes over the stdio of the process the client started: execve kept its pipes.
    const { runtime } = await runtimeOf();
    expect(runtime).toMatchObject({ node: process.version, single_threaded_gc: true });
    // The binding is built for this Node by `npm ci` (scripts/build-ssh2-binding.mjs); without it transfers are slower.
    expect(runtime['ssh2_native_crypto']).toBe(true);
  });

  it('SSHGATE_PARALLEL_GC=1 keeps V8\'s default collector', async () => {
    const { runtime } = await runtimeOf({ SSHGATE_PARALLEL_GC: '1' });
    expect(runtime['single_threaded_gc']).toBe(false);
  });
});

describe('CLI start-up errors', () => {
  it('an unknown config key stops start-up with the key path on stderr and nothing on stdout', async () => {
    const bad = join(dir, 'bad.yaml');
    writeFileSync(bad, stringify({ tier: 'read', hosts: { web1: { hostname: 'x', prot: 22 } } }));
    const err = await run(process.execPath, [main, 'serve', '--config', bad]).catch((e: unknown) => e as { code: number; stdout: string; stderr: string });
    expect(err).toMatchObject({ code: 2, stdout: '' });
    expect((err as { stderr: string }).stderr).toContain('hosts.web1.prot: unknown key');
  });

  it('a missing ${VAR} stops start-up naming the variable and the key', async () => {
    const bad = join(dir, 'missing-var.yaml');
    writeFileSync(bad, 'tier: read\nhosts:\n  web1:\n    hostname: ${SSHGATE_TEST_UNSET_VAR}\n');
    const err = await run(process.execPath, [main, 'serve', '--config', bad]).catch((e: unknown) => e as { code: number; stderr: string });
    expect((err as { code: number }).code).toBe(2);
    expect((err as { stderr: string }).stderr).toContain('hosts.web1.hostname: environment variable SSHGATE_TEST_UNSET_VAR is not set');
  });

  it('sshgate audit verify exits 0 on an intact log and 1 naming the first altered line', async () => {
    const log = join(dir, 'audit.jsonl');
    const ok = await run(process.execPath, [main, 'audit', 'verify', log]);
    expect(ok.stdout).toMatch(/intact/u);
    const lines = readFileSync(log, 'utf8').split('\n');
    lines[0] = (lines[0] ?? '').replace('"ssh_list_tools"', '"x"').replace('"box"', '"b0x"');
    const tampered = join(dir, 'tampered.jsonl');
    writeFileSync(tampered, lines.join('\n'));
    const bad = await run(process.execPath, [main, 'audit', 'verify', tampered]).catch((e: unknown) => e as { code: number; stdout: string });
    expect(bad).toMatchObject({ code: 1 });
    expect((bad as { stdout: string }).stdout).toMatch(/line 1/u);
  });
});
