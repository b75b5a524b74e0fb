// Drives a real sshgate server through a real MCP client (in memory) against real sshd processes.
import { mkdtemp, rm, writeFile, readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Client, InMemoryTransport, type CallToolResult } from '@modelcontextprotocol/client';
import { stringify } from 'yaml';
import { loadConfig } from '../../src/config/load.js';
import { silentLogger } from '../../src/log.js';
import { createServer } from '../../src/server/create-server.js';
import { selectTools, type Runtime } from '../../src/server/registry.js';
import { closeRuntime, createRuntime } from '../../src/server/runtime.js';
import { allTools } from '../../src/tools/index.js';
import type { SshdInstance } from '../../src/testing/sshd.js';

/** One host of a harness: the sshd it points at and extra per-host config keys. */
export interface HarnessHost {
  sshd: SshdInstance;
  config?: Record<string, unknown>;
}

export interface HarnessOptions {
  hosts: Record<string, HarnessHost>;
  /** Top-level config keys (tier, limits, pool, known_hosts.mode ...). */
  config?: Record<string, unknown>;
  /** Write no known_hosts lines (for unknown-host tests). */
  emptyKnownHosts?: boolean;
  env?: Record<string, string>;
}

export interface Harness {
  client: Client;
  runtime: Runtime;
  dir: string;
  configPath: string;
  knownHostsPath: string;
  auditPath: string;
  /** Calls a tool and returns the raw MCP result. */
  call(name: string, args?: Record<string, unknown>, options?: { signal?: AbortSignal; onprogress?: (p: unknown) => void }): Promise<CallToolResult>;
  /** Calls a tool and returns structuredContent, failing the test if the call was an error. */
  ok<T = Record<string, unknown>>(name: string, args?: Record<string, unknown>): Promise<T>;
  /** Calls a tool that must fail and returns its error view. */
  err(name: string, args?: Record<string, unknown>): Promise<{ code: string; message: string; hint?: string; details?: Record<string, unknown> }>;
  auditLines(): Promise<Record<string, unknown>[]>;
  close(): Promise<void>;
}

export async function startHarness(options: HarnessOptions): Promise<Harness> {
  const dir = await mkdtemp(join(tmpdir(), 'sshgate-harness-'));
  const knownHostsPath = join(dir, 'known_hosts');
  const auditPath = join(dir, 'audit.jsonl');
  const configPath = join(dir, 'config.yaml');
  const hosts: Record<string, unknown> = {};
  const lines: string[] = [];
  for (const [alias, h] of Object.entries(options.hosts)) {
    hosts[alias] = { hostname: h.sshd.address, port: h.sshd.port, user: h.sshd.user, identity_file: h.sshd.clientKeyPath, ...h.config };
    lines.push(h.sshd.knownHostsLine);
  }
  await writeFile(knownHostsPath, options.emptyKnownHosts === true ? '' : `${[...new Set(lines)].join('\n')}\n`);
  const config = {
    tier: 'exec',
    known_hosts: { file: knownHostsPath },
    audit: { path: auditPath },
    approvals: { dir: join(dir, 'approvals') },
    ...options.config,
    hosts,
  };
  if (typeof options.config?.['known_hosts'] === 'object') {
    config.known_hosts = { file: knownHostsPath, ...(options.config['known_hosts'] as object) };
  }
  await writeFile(configPath, stringify(config));
  const env = { ...process.env, ...options.env };
  const loaded = await loadConfig({ config: configPath }, env, dir);
  const runtime = await createRuntime(loaded, silentLogger, env);
  const tools = selectTools(allTools, loaded.config);
  const server = createServer(tools, runtime);
  const [clientTransport, serverTransport] = InMemoryTransport.createLinkedPair();
  await server.connect(serverTransport);
  const client = new Client({ name: 'sshgate-tests', version: '1.0.0' });
  await client.connect(clientTransport);

  const call: Harness['call'] = (name, args = {}, callOptions = {}) =>
    client.callTool(
      { name, arguments: args, ...(callOptions.onprogress === undefined ? {} : { _meta: { progressToken: `p-${name}` } }) },
      {
        timeout: 600_000,
        ...(callOptions.signal === undefined ? {} : { signal: callOptions.signal }),
        ...(callOptions.onprogress === undefined ? {} : { onprogress: callOptions.onprogress }),
      },
    );

  return {
    client,
    runtime,
    dir,
    configPath,
    knownHostsPath,
    auditPath,
    call,
    async ok(name, args) {
      const result = await call(name, args);
      if (result.isError === true) throw new Error(`${name} failed: ${JSON.stringify(result.content)}`);
      return result.structuredContent as never;
    },
    async err(name, args) {
      const result = await call(name, args);
      if (result.isError !== true) throw new Error(`${name} unexpectedly succeeded: ${JSON.stringify(result.structuredContent)}`);
      const sc = result.structuredContent as { error?: { code: string; message: string } } | undefined;
      if (sc?.error === undefined) {
        // An SDK-level error (schema validation) has only text content.
        const text = (result.content[0] as { text?: string } | undefined)?.text ?? '';
        return { code: 'SDK_ERROR', message: text };
      }
      return sc.error;
    },
    async auditLines() {
      const text = await readFile(auditPath, 'utf8');
      return text
        .split('\n')
        .filter((l) => l !== '')
        .map((l) => JSON.parse(l) as Record<string, unknown>);
    },
    async close() {
      await client.close().catch(() => undefined);
      await closeRuntime(runtime).catch(() => undefined);
      await rm(dir, { recursive: true, force: true });
    },
  };
}

/** Runs a command on the sshd host directly (these sshds are on this machine): for checks like pgrep. */
export { execFile as execFileCb } from 'node:child_process';
