// The configuration schema: the single source for config types, defaults, validation and docs/configuration.md.
import { z } from 'zod';
import { TIERS } from '../policy/tiers.js';
import { CONSTRUCTS } from '../policy/command-policy.js';

export const tierSchema = z.enum(TIERS).describe('Capability tier: read < write < exec < sudo.');

/** Tool groups; a group is offered only when the global tier reaches at least one of its tools. */
export const GROUPS = ['hosts', 'files', 'exec', 'jobs', 'shell', 'sudo'] as const;
export type Group = (typeof GROUPS)[number];

const envName = z
  .string()
  .regex(/^[A-Za-z_][A-Za-z0-9_]*$/, 'must be an environment variable name')
  .describe('Name of an environment variable holding the secret (the secret itself never goes in the file).');

const regexString = z.string().superRefine((value, ctx) => {
  try {
    new RegExp(value, 'u');
  } catch (err) {
    ctx.addIssue({ code: 'custom', message: `not a valid regular expression: ${(err as Error).message}` });
  }
});

/** Command rules of a host (issue 3, enforced by policy/command-policy.ts). */
export const commandRulesSchema = z.strictObject({
  allow: z.array(regexString).optional().describe('Regexes; when present, every simple command must match one (matched against its words joined by single spaces).'),
  deny: z.array(regexString).optional().describe('Regexes; a simple command matching one is refused. A speed bump, not a boundary.'),
  allow_constructs: z
    .array(z.enum(CONSTRUCTS))
    .optional()
    .describe('Constructs refused by default that this host allows (for example "command_substitution"). See docs/security-model.md for the list.'),
  max_length: z.number().int().positive().optional().describe('Commands longer than this many bytes are refused before parsing. Default 16384.'),
});

/** Settings a host inherits from `defaults` and may override. */
const hostSettingsShape = {
  port: z.number().int().min(1).max(65535).optional().describe('SSH port. Default 22.'),
  user: z.string().min(1).optional().describe('Remote user name. Default: the local user name.'),
  identity_file: z
    .union([z.string().min(1), z.array(z.string().min(1)).min(1)])
    .optional()
    .describe('Private key file(s), OpenSSH or PEM format; `~` expands to the home directory.'),
  passphrase_env: envName.optional().describe('Environment variable holding the passphrase of identity_file.'),
  agent: z
    .union([z.boolean(), z.string().min(1)])
    .optional()
    .describe('Use ssh-agent: true for $SSH_AUTH_SOCK, or the path of an agent socket.'),
  password_env: envName.optional().describe('Environment variable holding the account password (password authentication).'),
  tier: tierSchema.optional().describe("This host's ceiling; the effective tier is the lower of this and the global tier."),
  labels: z.array(z.string().regex(/^[\w.-]+$/u, 'labels are letters, digits, _ . -')).optional(),
  allow_execute: z.boolean().optional().describe('false turns off the exec-tier tools (ssh_exec) on this host.'),
  allow_sftp_read: z.boolean().optional().describe('false turns off the reading file tools on this host.'),
  allow_sftp_write: z.boolean().optional().describe('false turns off the writing file tools on this host.'),
  roots: z
    .array(z.string().startsWith('/', 'roots are absolute POSIX paths'))
    .optional()
    .describe('Remote directories the file tools and the exec cwd are confined to (checked lexically, then by remote realpath). Absent: the whole file system.'),
  restricted_paths: z
    .array(z.string().startsWith('/', 'restricted paths are absolute POSIX paths'))
    .optional()
    .describe('Paths inside the roots that are refused, with everything below them.'),
  commands: commandRulesSchema.optional(),
  rate: z
    .strictObject({
      per_minute: z.number().int().positive().optional().describe('Calls per minute to this host (token bucket).'),
      concurrency: z.number().int().positive().optional().describe('Calls in flight at once to this host.'),
    })
    .optional(),
  redact_paths: z.array(z.string()).optional().describe('Globs of remote paths whose content is always read with redaction.'),
  approval: z
    .array(regexString)
    .optional()
    .describe(
      'Calls that need a human: "destructive", "write", "exec", "sudo" (tools of that tier or above), or a regex matched against the command.',
    ),
  jump: z.string().min(1).optional().describe('Alias of another host to reach this one through (ProxyJump); chains allowed, every hop host-key-checked.'),
  platform: z.enum(['posix', 'windows', 'cli']).optional().describe('posix (default), windows (OpenSSH for Windows: SFTP paths /C:/...), or cli (a network device: prompt_regex required).'),
  prompt_regex: regexString.optional().describe('cli hosts: the prompt, matched at the start of a line, e.g. "^[\\w.-]+(\\(config[^)]*\\))?[>#] ?$".'),
  pager_off: z.string().optional().describe('cli hosts: the command that turns paging off (default "terminal length 0").'),
  sudo_password_env: envName.optional().describe('Environment variable holding the sudo password (fed to sudo -S on stdin, never on argv).'),
  sudo_password_command: z
    .array(z.string())
    .min(1)
    .optional()
    .describe('A local command (argv, no shell) that prints the sudo password, e.g. ["pass", "show", "web1/sudo"].'),
} as const;

export const defaultsSchema = z.strictObject(hostSettingsShape);

export const hostSchema = z.strictObject({
  hostname: z.string().min(1).optional().describe('DNS name or address. Default: the alias itself.'),
  ...hostSettingsShape,
});

export const templateSchema = z.strictObject({
  command: z.string().min(1).describe('The command; `{name}` placeholders are replaced by parameter values, each as one shell-quoted word.'),
  params: z.record(z.string().regex(/^\w+$/u), regexString).optional().describe('Parameter name -> regex the whole value must match.'),
  tier: tierSchema.optional().describe('Tier needed to run this template. Default exec.'),
  description: z.string().optional(),
  timeout_ms: z.number().int().positive().optional(),
  allow_dash: z.array(z.string()).optional().describe('Parameters whose values may start with "-".'),
  hosts: z.array(z.string()).optional().describe('Aliases or labels the template is offered on. Default: every host.'),
});

export const configSchema = z.strictObject({
  tier: tierSchema.default('read').describe('Global ceiling. SSHGATE_TIER may lower it, never raise it.'),
  groups: z.array(z.enum(GROUPS)).optional().describe('Tool groups offered. Default: every group the tier reaches.'),
  known_hosts: z
    .strictObject({
      file: z.string().default('~/.ssh/known_hosts').describe('OpenSSH known_hosts file.'),
      mode: z.enum(['strict', 'accept-new']).default('strict').describe('strict refuses unknown hosts; accept-new appends a first-seen key and still refuses a changed one.'),
    })
    .prefault({}),
  audit: z
    .strictObject({
      path: z.string().default('~/.local/state/sshgate/audit.jsonl').describe('JSON Lines audit log with a hash chain.'),
    })
    .prefault({}),
  local_paths: z.array(z.string()).default([]).describe('Local directories that upload and download may use.'),
  limits: z
    .strictObject({
      timeout_ms: z.number().int().positive().default(60_000).describe('Default timeout of a call, connecting included.'),
      max_timeout_ms: z.number().int().positive().default(3_600_000).describe('Ceiling for a timeout_ms given by the model.'),
      max_output_bytes: z.number().int().positive().default(1024 * 1024).describe('Output kept per stream of ssh_exec (head and tail).'),
      max_read_bytes: z.number().int().positive().default(1024 * 1024).describe('Ceiling of ssh_read_file max_bytes.'),
      max_write_bytes: z.number().int().positive().default(16 * 1024 * 1024).describe('Largest content ssh_write_file accepts.'),
      max_remove_entries: z.number().int().positive().default(10_000).describe('A recursive ssh_remove_path of a larger tree is refused with the count.'),
      max_diff_bytes: z.number().int().positive().default(4 * 1024 * 1024).describe('Largest file ssh_diff_files, ssh_edit_file and ssh_patch_file handle.'),
    })
    .prefault({}),
  pool: z
    .strictObject({
      idle_timeout_ms: z.number().int().nonnegative().default(300_000).describe('An unused connection is closed after this long.'),
      max_connections_per_host: z.number().int().positive().default(6),
      max_channels_per_connection: z
        .number()
        .int()
        .positive()
        .default(8)
        .describe('Kept below OpenSSH MaxSessions (default 10).'),
      max_handshakes_per_host: z.number().int().positive().default(3).describe('Concurrent new connections per host (OpenSSH MaxStartups drops bursts).'),
      keepalive_interval_ms: z.number().int().positive().default(15_000),
      keepalive_count_max: z.number().int().positive().default(3),
      connect_timeout_ms: z.number().int().positive().default(20_000).describe('SSH handshake timeout (also bounded by the call timeout).'),
    })
    .prefault({}),
  rate: z
    .strictObject({
      per_minute: z.number().int().positive().optional().describe('Calls per minute across all hosts, per principal.'),
      concurrency: z.number().int().positive().optional().describe('Calls in flight across all hosts, per principal.'),
    })
    .optional()
    .describe('Global ceiling on top of each host\'s `rate`.'),
  spool: z
    .strictObject({
      max_output_bytes: z.number().int().positive().default(64 * 1024 * 1024).describe('Full output kept per stream of one command for ssh_read_output.'),
      max_total_bytes: z.number().int().positive().default(512 * 1024 * 1024).describe('Spooled output kept in all (oldest removed first).'),
      max_age_ms: z.number().int().positive().default(3_600_000).describe('Spooled output is removed after this long.'),
    })
    .prefault({}),
  approvals: z
    .strictObject({
      dir: z.string().default('~/.local/state/sshgate/approvals').describe('Where pending approvals wait for `sshgate approve` (0700).'),
      ttl_ms: z.number().int().positive().default(5 * 60_000).describe('An approval request expires after this long.'),
    })
    .prefault({}),
  shells: z
    .strictObject({
      idle_timeout_ms: z.number().int().positive().default(15 * 60_000).describe('A shell session unused this long is closed.'),
      max_lifetime_ms: z.number().int().positive().default(4 * 3_600_000).describe('A shell session is closed after this long in any case.'),
      max_per_host: z.number().int().positive().default(4).describe('Open shell sessions per host.'),
    })
    .prefault({}),
  jobs: z
    .strictObject({
      dir: z.string().default('.sshgate/jobs').describe('Remote job directory, relative to the remote home directory unless absolute.'),
      max_log_bytes: z.number().int().positive().default(64 * 1024 * 1024).describe('Output kept per job on the host (the log is capped there).'),
    })
    .prefault({}),
  transfers: z
    .strictObject({
      chunk_bytes: z.number().int().positive().default(256 * 1024).describe('SFTP request size of uploads and downloads.'),
      concurrency: z.number().int().positive().default(32).describe('SFTP requests in flight per transfer.'),
      max_entries: z.number().int().positive().default(10_000).describe('Files a recursive transfer may copy.'),
    })
    .prefault({}),
  defaults: defaultsSchema.default({}),
  hosts: z.record(z.string().regex(/^[A-Za-z0-9][\w.-]*$/u, 'host aliases are letters, digits, _ . -'), hostSchema).default({}),
  templates: z.record(z.string().regex(/^\w+$/u), templateSchema).default({}),
});

/** The validated configuration (after interpolation, env overrides and defaults). */
export type Config = z.infer<typeof configSchema>;
export type HostConfig = z.infer<typeof hostSchema>;
export type HostDefaults = z.infer<typeof defaultsSchema>;
export type CommandRules = z.infer<typeof commandRulesSchema>;
export type TemplateConfig = z.infer<typeof templateSchema>;
