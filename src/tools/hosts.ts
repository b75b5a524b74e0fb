// The hosts group: what is configured, whether a host answers, and what it is.
import { z } from 'zod';
import { SshgateError } from '../errors.js';
import { TIERS } from '../policy/tiers.js';
import { defineTool } from './define-tool.js';
import { hostAlias } from './fields.js';

export const listHosts = defineTool({
  name: 'ssh_list_hosts',
  title: 'List configured hosts',
  description:
    'List the SSH hosts this server may reach, with their labels, address, user and effective tier (read < write < exec < sudo: ' +
    'the highest kind of tool allowed on that host). Use the alias as the `host` argument of the other tools. No connection is made.',
  group: 'hosts',
  tier: 'read',
  kind: 'meta',
  effects: { destructive: false, idempotent: true },
  input: z.object({
    label: z.string().optional().describe('Only hosts carrying this label.'),
  }),
  output: z.object({
    hosts: z.array(
      z.object({
        alias: z.string(),
        hostname: z.string(),
        port: z.number().int(),
        user: z.string(),
        tier: z.enum(TIERS),
        labels: z.array(z.string()),
        roots: z.array(z.string()).describe('Directories file tools are confined to; empty means the whole file system.'),
        allow_execute: z.boolean(),
        allow_sftp_read: z.boolean(),
        allow_sftp_write: z.boolean(),
        templates: z
          .array(z.object({ name: z.string(), tier: z.enum(TIERS), description: z.string().nullable(), params: z.array(z.string()) }))
          .describe('Command templates offered on this host (run them with ssh_run_template).'),
      }),
    ),
  }),
  run({ label }, ctx) {
    const hosts = ctx.inventory.list().filter((h) => label === undefined || h.labels.includes(label));
    return Promise.resolve({ hosts });
  },
  summarize: (out) =>
    out.hosts.length === 0
      ? 'No hosts are configured.'
      : out.hosts
          .map(
            (h) =>
              `${h.alias}  ${h.user}@${h.hostname}:${h.port}  tier=${h.tier}${h.labels.length > 0 ? `  labels=${h.labels.join(',')}` : ''}` +
              (h.templates.length > 0 ? `  templates=${h.templates.map((t) => `${t.name}(${t.params.join(',')})`).join(' ')}` : ''),
          )
          .join('\n'),
});

export const pingHost = defineTool({
  name: 'ssh_ping_host',
  title: 'Check that a host answers',
  description:
    'Connect to a host (verifying its host key against known_hosts), authenticate, and time one round trip that runs `true`. ' +
    'Returns the latency, the host key fingerprint and the server banner. Use it to diagnose connection problems.',
  group: 'hosts',
  tier: 'read',
  kind: 'meta',
  effects: { destructive: false, idempotent: true },
  input: z.object({ host: hostAlias }),
  output: z.object({
    host: z.string(),
    reachable: z.boolean(),
    latency_ms: z.number().describe('Round trip of running `true` on an open connection.'),
    fingerprint: z.string().describe('SHA256 fingerprint of the host key, as ssh-keygen -l prints it.'),
    key_type: z.string(),
    banner: z.string().describe("The server's SSH identification string."),
  }),
  async run(_input, ctx) {
    const host = requireHost(ctx.host);
    const ping = await ctx.remote.ping(host);
    return { host: host.alias, ...ping };
  },
  summarize: (out) => `${out.host} is reachable: ${out.latency_ms} ms round trip, ${out.key_type} ${out.fingerprint}, ${out.banner}`,
});

/** The script of ssh_get_host_info: fixed text, no model input; each section starts with a marker line. */
const HOST_INFO_SCRIPT = [
  'echo @uname; uname -srm 2>/dev/null',
  'echo @hostname; hostname 2>/dev/null || cat /etc/hostname 2>/dev/null',
  'echo @os; (. /etc/os-release 2>/dev/null && echo "$PRETTY_NAME")',
  'echo @uptime; cat /proc/uptime 2>/dev/null',
  'echo @cpus; nproc 2>/dev/null || getconf _NPROCESSORS_ONLN 2>/dev/null',
  'echo @load; cat /proc/loadavg 2>/dev/null',
  "echo @mem; grep -E '^(MemTotal|MemAvailable|SwapTotal|SwapFree):' /proc/meminfo 2>/dev/null",
  'echo @df; df -P -k -x tmpfs -x devtmpfs -x overlay -x squashfs 2>/dev/null || df -P -k 2>/dev/null',
  'true',
].join('\n');

const diskSchema = z.object({
  filesystem: z.string(),
  mount: z.string(),
  size_bytes: z.number(),
  used_bytes: z.number(),
  available_bytes: z.number(),
  use_percent: z.number(),
});

/** Parses the sectioned output of {@link HOST_INFO_SCRIPT}. */
export function parseHostInfo(text: string): {
  os: string | null;
  kernel: string | null;
  arch: string | null;
  hostname: string | null;
  uptime_s: number | null;
  cpus: number | null;
  load: number[] | null;
  memory: { total_bytes: number; available_bytes: number; swap_total_bytes: number; swap_free_bytes: number } | null;
  disks: z.infer<typeof diskSchema>[];
} {
  const sections = new Map<string, string[]>();
  let current: string[] | null = null;
  for (const line of text.split('\n')) {
    const marker = /^@(\w+)$/u.exec(line);
    if (marker?.[1] !== undefined) {
      current = [];
      sections.set(marker[1], current);
    } else if (current !== null && line.trim() !== '') current.push(line);
  }
  const first = (name: string): string | null => sections.get(name)?.[0]?.trim() ?? null;
  const uname = first('uname')?.split(/\s+/u) ?? [];
  const num = (v: string | undefined): number | null => (v === undefined || Number.isNaN(Number(v)) ? null : Number(v));
  const mem = new Map<string, number>();
  for (const line of sections.get('mem') ?? []) {
    const m = /^(\w+):\s+(\d+)\s*kB/u.exec(line);
    if (m?.[1] !== undefined && m[2] !== undefined) mem.set(m[1], Number(m[2]) * 1024);
  }
  const load = first('load')?.split(/\s+/u).slice(0, 3).map(Number) ?? null;
  const disks: z.infer<typeof diskSchema>[] = [];
  for (const line of (sections.get('df') ?? []).slice(1)) {
    const f = line.split(/\s+/u);
    if (f.length < 6) continue;
    const [fs, size, used, avail, pct, ...mount] = f;
    disks.push({
      filesystem: fs ?? '',
      mount: mount.join(' '),
      size_bytes: Number(size) * 1024,
      used_bytes: Number(used) * 1024,
      available_bytes: Number(avail) * 1024,
      use_percent: Number((pct ?? '0').replace('%', '')),
    });
  }
  return {
    os: first('os') ?? uname[0] ?? null,
    kernel: uname[1] ?? null,
    arch: uname[2] ?? null,
    hostname: first('hostname'),
    uptime_s: num(first('uptime')?.split(/\s+/u)[0]),
    cpus: num(first('cpus') ?? undefined),
    load: load !== null && load.length === 3 && load.every((n) => !Number.isNaN(n)) ? load : null,
    memory: mem.has('MemTotal')
      ? {
          total_bytes: mem.get('MemTotal') ?? 0,
          available_bytes: mem.get('MemAvailable') ?? 0,
          swap_total_bytes: mem.get('SwapTotal') ?? 0,
          swap_free_bytes: mem.get('SwapFree') ?? 0,
        }
      : null,
    disks,
  };
}

export const getHostInfo = defineTool({
  name: 'ssh_get_host_info',
  title: 'Describe a host',
  description:
    'Report what a host is and how it is doing: OS, kernel, architecture, hostname, uptime, CPU count, load averages, memory and ' +
    'disk usage per file system. Runs a fixed, read-only script; fields the host cannot report are null.',
  group: 'hosts',
  tier: 'read',
  kind: 'meta',
  effects: { destructive: false, idempotent: true },
  input: z.object({ host: hostAlias }),
  output: z.object({
    host: z.string(),
    os: z.string().nullable(),
    kernel: z.string().nullable(),
    arch: z.string().nullable(),
    hostname: z.string().nullable(),
    uptime_s: z.number().nullable(),
    cpus: z.number().nullable(),
    load: z.array(z.number()).nullable().describe('1, 5 and 15 minute load averages.'),
    memory: z
      .object({ total_bytes: z.number(), available_bytes: z.number(), swap_total_bytes: z.number(), swap_free_bytes: z.number() })
      .nullable(),
    disks: z.array(diskSchema),
  }),
  async run(_input, ctx) {
    const host = requireHost(ctx.host);
    const result = await ctx.remote.exec(host, HOST_INFO_SCRIPT, { maxOutputBytes: 256 * 1024 });
    return { host: host.alias, ...parseHostInfo(result.stdout) };
  },
  summarize: (out) => {
    const gib = (n: number): string => `${(n / 2 ** 30).toFixed(1)} GiB`;
    const lines = [
      `${out.host}: ${out.os ?? 'unknown OS'}, kernel ${out.kernel ?? '?'} ${out.arch ?? ''}, hostname ${out.hostname ?? '?'}`,
      `uptime ${out.uptime_s === null ? '?' : `${(out.uptime_s / 3600).toFixed(1)} h`}, ${out.cpus ?? '?'} CPUs, load ${out.load?.join(' ') ?? '?'}`,
    ];
    if (out.memory !== null) lines.push(`memory ${gib(out.memory.available_bytes)} available of ${gib(out.memory.total_bytes)}`);
    for (const d of out.disks) lines.push(`disk ${d.mount}: ${d.use_percent}% used, ${gib(d.available_bytes)} free of ${gib(d.size_bytes)}`);
    return lines.join('\n');
  },
});

/** The capability probe of ssh_check_host: fixed text, read-only, one `key=value` per line. */
const CAPABILITY_SCRIPT = [
  'if command -v sudo >/dev/null 2>&1; then if sudo -n true >/dev/null 2>&1; then echo sudo=passwordless; else echo sudo=password; fi; else echo sudo=absent; fi',
  'for c in bash systemctl journalctl docker podman apt-get dnf yum apk zypper pacman python3 sha256sum setsid; do command -v "$c" >/dev/null 2>&1 && echo "have=$c"; done',
  'echo "user=$(id -un)"',
  'true',
].join('\n');

export const checkHost = defineTool({
  name: 'ssh_check_host',
  title: 'Check what is allowed on a host',
  description:
    'Pre-flight for a host: its effective tier and toggles, roots and restricted paths, command rules, approval rules, rate limits, ' +
    'templates, which sshgate tools it allows (and why not), and what the remote account can do (sudo without a password, ' +
    'systemctl, docker or podman, the package manager). Use it before planning work on a host. Policy refusals are final: ' +
    'do not work around them.',
  group: 'hosts',
  tier: 'read',
  kind: 'meta',
  effects: { destructive: false, idempotent: true },
  input: z.object({ host: hostAlias, probe: z.boolean().default(true).describe('Also connect and probe remote capabilities.') }),
  output: z.object({
    host: z.string(),
    tier: z.enum(TIERS),
    allow_execute: z.boolean(),
    allow_sftp_read: z.boolean(),
    allow_sftp_write: z.boolean(),
    roots: z.array(z.string()),
    restricted_paths: z.array(z.string()),
    commands: z.object({ allow: z.array(z.string()), deny: z.array(z.string()), allow_constructs: z.array(z.string()) }),
    approval: z.array(z.string()).describe('Rules that make a call wait for a human.'),
    rate: z.object({ per_minute: z.number().nullable(), concurrency: z.number().nullable() }),
    templates: z.array(z.string()),
    tools: z.array(z.object({ name: z.string(), tier: z.enum(TIERS), allowed: z.boolean(), reason: z.string().nullable() })),
    capabilities: z
      .object({ remote_user: z.string().nullable(), sudo: z.enum(['passwordless', 'password', 'absent', 'unknown']), commands: z.array(z.string()) })
      .nullable(),
    capabilities_error: z.string().nullable(),
  }),
  async run({ probe }, ctx) {
    const host = requireHost(ctx.host);
    let capabilities: { remote_user: string | null; sudo: 'passwordless' | 'password' | 'absent' | 'unknown'; commands: string[] } | null = null;
    let capabilitiesError: string | null = null;
    if (probe) {
      try {
        const r = await ctx.remote.exec(host, CAPABILITY_SCRIPT, { maxOutputBytes: 64 * 1024 });
        const lines = r.stdout.split('\n');
        const value = (key: string): string | undefined => lines.find((l) => l.startsWith(`${key}=`))?.slice(key.length + 1);
        const sudo = value('sudo');
        capabilities = {
          remote_user: value('user') ?? null,
          sudo: sudo === 'passwordless' || sudo === 'password' || sudo === 'absent' ? sudo : 'unknown',
          commands: lines.filter((l) => l.startsWith('have=')).map((l) => l.slice(5)),
        };
      } catch (err) {
        capabilitiesError = err instanceof SshgateError ? `${err.code}: ${err.message}` : 'probe failed';
      }
    }
    const summary = ctx.inventory.list().find((h) => h.alias === host.alias);
    return {
      host: host.alias,
      tier: host.tier,
      allow_execute: host.allowExecute,
      allow_sftp_read: host.allowSftpRead,
      allow_sftp_write: host.allowSftpWrite,
      roots: host.roots,
      restricted_paths: host.restrictedPaths,
      commands: { allow: host.commands?.allow ?? [], deny: host.commands?.deny ?? [], allow_constructs: host.commands?.allow_constructs ?? [] },
      approval: host.approval,
      rate: { per_minute: host.rate?.per_minute ?? null, concurrency: host.rate?.concurrency ?? null },
      templates: summary?.templates.map((t) => t.name) ?? [],
      tools: ctx.toolsFor(host),
      capabilities,
      capabilities_error: capabilitiesError,
    };
  },
  summarize: (out) => {
    const allowed = out.tools.filter((t) => t.allowed).map((t) => t.name);
    const refused = out.tools.filter((t) => !t.allowed).map((t) => t.name);
    return [
      `${out.host}: tier ${out.tier}; roots ${out.roots.length === 0 ? '(whole file system)' : out.roots.join(', ')}`,
      `allowed tools: ${allowed.join(', ') || '(none)'}`,
      refused.length > 0 ? `not allowed here: ${refused.join(', ')}` : '',
      out.commands.allow.length > 0 ? `command allow list: ${out.commands.allow.join(' | ')}` : 'no command allow list',
      out.approval.length > 0 ? `needs human approval for: ${out.approval.join(', ')}` : '',
      out.templates.length > 0 ? `templates: ${out.templates.join(', ')}` : '',
      out.capabilities === null
        ? `capabilities: ${out.capabilities_error ?? 'not probed'}`
        : `remote user ${out.capabilities.remote_user ?? '?'}, sudo ${out.capabilities.sudo}, has ${out.capabilities.commands.join(' ')}`,
    ]
      .filter((l) => l !== '')
      .join('\n');
  },
});

/** The host of a host-bound call; invokeTool always resolves it before `run`. */
export function requireHost<T>(host: T | null): T {
  if (host === null) throw new SshgateError('INTERNAL', 'a host-bound tool ran without a resolved host');
  return host;
}

export const hostTools = [listHosts, pingHost, getHostInfo, checkHost] as const;
