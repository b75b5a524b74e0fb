// MCP resources (server info, host inventory) and prompts (runbooks) of the server.
import { McpServer, ResourceTemplate } from '@modelcontextprotocol/server';
import { z } from 'zod';
import { nativeCryptoAvailable } from '../ssh/native-crypto.js';
import type { AnyTool } from '../tools/define-tool.js';
import type { Runtime } from './registry.js';

/** Version and configuration summary, for `sshgate://server-info`. */
function serverInfo(runtime: Runtime, tools: readonly AnyTool[], version: string): Record<string, unknown> {
  const config = runtime.loaded.config;
  return {
    name: 'sshgate',
    version,
    tier: config.tier,
    groups: config.groups ?? 'all',
    tools: tools.map((t) => t.name),
    config_source: runtime.loaded.source,
    hosts: runtime.loaded.hosts.size,
    known_hosts_mode: config.known_hosts.mode,
    // What decides transfer speed on this machine (docs/performance.md).
    runtime: {
      node: process.version,
      ssh2_native_crypto: nativeCryptoAvailable(),
      single_threaded_gc: process.execArgv.includes('--single-threaded-gc'),
    },
  };
}

const json = (uri: URL, value: unknown): { contents: { uri: string; mimeType: string; text: string }[] } => ({
  contents: [{ uri: uri.href, mimeType: 'application/json', text: JSON.stringify(value, null, 2) }],
});

/** Registers the resources: `sshgate://server-info`, `sshgate://hosts`, `sshgate://hosts/{alias}`. No secrets in any. */
export function registerResources(server: McpServer, runtime: Runtime, tools: readonly AnyTool[], version: string): void {
  server.registerResource('server-info', 'sshgate://server-info', { title: 'sshgate server information', mimeType: 'application/json' }, (uri) =>
    json(uri, serverInfo(runtime, tools, version)),
  );
  server.registerResource('hosts', 'sshgate://hosts', { title: 'Configured hosts', mimeType: 'application/json' }, (uri) => json(uri, runtime.inventory.list()));
  server.registerResource(
    'host',
    new ResourceTemplate('sshgate://hosts/{alias}', {
      list: () => ({
        resources: runtime.inventory.list().map((h) => ({ uri: `sshgate://hosts/${h.alias}`, name: h.alias, mimeType: 'application/json' })),
      }),
    }),
    { title: 'One configured host', mimeType: 'application/json' },
    (uri, variables) => {
      const alias = String(variables['alias']);
      const host = runtime.inventory.list().find((h) => h.alias === alias);
      if (host === undefined) throw new Error(`host ${alias} is not configured`);
      return json(uri, host);
    },
  );
}

const RUNBOOKS = {
  'diagnose-full-disk': {
    title: 'Diagnose a full disk',
    description: 'Find what fills a file system on a host and propose a safe clean-up.',
    args: z.object({ host: z.string().describe('Host alias'), mount: z.string().optional().describe('Mount point, default the fullest') }),
    text: (a: { host: string; mount?: string | undefined }) =>
      `On host ${a.host}, diagnose a full disk${a.mount === undefined ? '' : ` on ${a.mount}`}.\n` +
      '1. ssh_check_host to see what is allowed, then ssh_get_host_info for disk usage per file system.\n' +
      '2. Find the biggest directories (ssh_exec "du -xh --max-depth=2 <mount> | sort -h | tail -n 30" if exec is allowed; otherwise ssh_find_files with size bounds).\n' +
      '3. Check usual suspects: /var/log (rotated and journal logs: journalctl --disk-usage), package caches, core dumps, docker images, deleted-but-open files (lsof +L1).\n' +
      '4. Report what uses the space and propose clean-up steps with the space each frees. Do not delete anything without an explicit instruction.',
  },
  'investigate-failing-service': {
    title: 'Investigate a failing service',
    description: 'Find why a systemd service fails and propose a fix.',
    args: z.object({ host: z.string().describe('Host alias'), service: z.string().describe('systemd unit name') }),
    text: (a: { host: string; service: string }) =>
      `On host ${a.host}, investigate why the service ${a.service} fails.\n` +
      `1. ssh_exec "systemctl status ${a.service} --no-pager" and "journalctl -u ${a.service} -n 200 --no-pager" (use ssh_read_output with grep on long output).\n` +
      '2. Read the unit file and the configuration files it names (ssh_read_file); check ports, permissions, disk space and recent package changes.\n' +
      '3. Report the cause with the evidence (log lines, file contents) and propose the smallest fix. Do not restart or change anything without an explicit instruction.',
  },
  'change-config-safely': {
    title: 'Change a configuration file safely',
    description: 'Edit a config file with a backup, a validation step and a rollback plan.',
    args: z.object({ host: z.string().describe('Host alias'), path: z.string().describe('Absolute path of the file'), change: z.string().describe('What to change') }),
    text: (a: { host: string; path: string; change: string }) =>
      `On host ${a.host}, change ${a.path}: ${a.change}.\n` +
      '1. ssh_read_file the file and keep its sha256.\n' +
      '2. Make the smallest edit with ssh_edit_file (exact old_text -> new_text), passing expected_sha256 so a concurrent change is not overwritten; use dry_run first and show the diff.\n' +
      '3. Validate with the service\'s own checker if there is one (nginx -t, sshd -t, visudo -c, systemd-analyze verify ...).\n' +
      '4. If validation fails, write the original content back (expected_sha256 = the new sha256) and report. Reload the service only when asked.',
  },
} as const;

/** Registers the runbook prompts. */
export function registerPrompts(server: McpServer): void {
  const message = (text: string): { messages: { role: 'user'; content: { type: 'text'; text: string } }[] } => ({
    messages: [{ role: 'user', content: { type: 'text', text } }],
  });
  const disk = RUNBOOKS['diagnose-full-disk'];
  server.registerPrompt('diagnose-full-disk', { title: disk.title, description: disk.description, argsSchema: disk.args }, (args) => message(disk.text(args)));
  const service = RUNBOOKS['investigate-failing-service'];
  server.registerPrompt('investigate-failing-service', { title: service.title, description: service.description, argsSchema: service.args }, (args) =>
    message(service.text(args)),
  );
  const config = RUNBOOKS['change-config-safely'];
  server.registerPrompt('change-config-safely', { title: config.title, description: config.description, argsSchema: config.args }, (args) => message(config.text(args)));
}
