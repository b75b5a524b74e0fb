// Loads the configuration: file (or ~/.ssh/config when there is none) < environment < flags, validated, then frozen.
import { readFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { homedir, userInfo } from 'node:os';
import { join, resolve } from 'node:path';
import { parse as parseYaml } from 'yaml';
import SSHConfig from 'ssh-config';
import type { z } from 'zod';
import { SshgateError } from '../errors.js';
import { minTier, TIERS, type Tier } from '../policy/tiers.js';
import { configSchema, type CommandRules, type Config } from './schema.js';

/** Where the configuration came from, for `ssh_list_hosts`, `sshgate doctor` and logs. */
export interface ConfigSource {
  kind: 'file' | 'ssh_config' | 'empty';
  path: string | null;
}

/** A host with defaults applied and every path expanded: what the SSH layer and the policy use. */
export interface ResolvedHost {
  alias: string;
  hostname: string;
  port: number;
  user: string;
  /** Absolute paths of private keys, tried in order. */
  identityFiles: string[];
  passphraseEnv: string | null;
  /** Agent socket path, or null for no agent. */
  agent: string | null;
  passwordEnv: string | null;
  /** min(global tier, host tier). */
  tier: Tier;
  labels: string[];
  allowExecute: boolean;
  allowSftpRead: boolean;
  allowSftpWrite: boolean;
  roots: string[];
  restrictedPaths: string[];
  commands: CommandRules | null;
  rate: { per_minute?: number | undefined; concurrency?: number | undefined } | null;
  redactPaths: string[];
  /** Alias of the jump host, or null. */
  jump: string | null;
  platform: 'posix' | 'windows' | 'cli';
  promptRegex: string | null;
  pagerOff: string | null;
  sudoPasswordEnv: string | null;
  sudoPasswordCommand: string[] | null;
}

/** The loaded configuration: the validated file plus the resolved hosts. Frozen. */
export interface LoadedConfig {
  config: Config;
  hosts: ReadonlyMap<string, ResolvedHost>;
  source: ConfigSource;
  /** Absolute paths after `~` expansion. */
  knownHostsFile: string;
  auditPath: string;
  localPaths: string[];
}

/** Command-line values that take precedence over the file and the environment. */
export interface ConfigFlags {
  config?: string;
  tier?: Tier;
}

/** Environment seen by the loader; defaults to process.env. */
export type Env = Readonly<Record<string, string | undefined>>;

/** Expands a leading `~` or `~/` to `home`. Other paths are returned unchanged. */
export function expandHome(path: string, home: string = homedir()): string {
  if (path === '~') return home;
  if (path.startsWith('~/')) return join(home, path.slice(2));
  return path;
}

/**
 * Picks the config file: `--config`, else `$SSHGATE_CONFIG`, else `$XDG_CONFIG_HOME/sshgate/config.yaml`
 * (default `~/.config/sshgate/config.yaml`). Returns null when the default location has no file.
 * @throws SshgateError CONFIG_INVALID when an explicitly named file does not exist.
 */
export function findConfigFile(flags: ConfigFlags, env: Env, home: string): string | null {
  const explicit = flags.config ?? env['SSHGATE_CONFIG'];
  if (explicit !== undefined && explicit !== '') {
    const path = resolve(expandHome(explicit, home));
    if (!existsSync(path)) {
      throw new SshgateError('CONFIG_INVALID', `config file ${path} does not exist (from ${flags.config !== undefined ? '--config' : 'SSHGATE_CONFIG'})`);
    }
    return path;
  }
  const xdg = env['XDG_CONFIG_HOME'];
  const path = join(xdg !== undefined && xdg !== '' ? xdg : join(home, '.config'), 'sshgate', 'config.yaml');
  return existsSync(path) ? path : null;
}

/**
 * Replaces `${VAR}` and `$VAR` in every string of a parsed YAML document with the environment's value.
 * `$$` stands for a literal `$`. A `$` not followed by a name or `{` is kept as it is (so regexes ending
 * in `$` need no escaping).
 * @throws SshgateError CONFIG_INVALID naming the key path and the variable when a variable is not set.
 */
export function interpolateEnv(value: unknown, env: Env, path: string[] = []): unknown {
  if (typeof value === 'string') {
    return value.replace(/\$\$|\$\{([A-Za-z_][A-Za-z0-9_]*)\}|\$([A-Za-z_][A-Za-z0-9_]*)/gu, (match, braced?: string, bare?: string) => {
      if (match === '$$') return '$';
      const name = braced ?? bare ?? '';
      const found = env[name];
      if (found === undefined) {
        throw new SshgateError('CONFIG_INVALID', `config: ${formatPath(path)}: environment variable ${name} is not set`);
      }
      return found;
    });
  }
  if (Array.isArray(value)) return value.map((item, i) => interpolateEnv(item, env, [...path, String(i)]));
  if (value !== null && typeof value === 'object') {
    const out: Record<string, unknown> = {};
    for (const [key, item] of Object.entries(value)) out[key] = interpolateEnv(item, env, [...path, key]);
    return out;
  }
  return value;
}

function formatPath(path: readonly PropertyKey[]): string {
  return path.length === 0 ? '(top level)' : path.map(String).join('.');
}

/** Formats zod issues as `config: hosts.web1.port: expected number, received string` lines. */
export function formatZodError(error: z.ZodError, origin: string): string {
  return error.issues
    .map((issue) => {
      if (issue.code === 'unrecognized_keys') {
        return issue.keys.map((key) => `${origin}: ${formatPath([...issue.path, key])}: unknown key`).join('\n');
      }
      return `${origin}: ${formatPath(issue.path)}: ${issue.message}`;
    })
    .join('\n');
}

/**
 * Validates a parsed document (after interpolation) against the schema.
 * @throws SshgateError CONFIG_INVALID with every problem, each naming its key path.
 */
export function parseConfig(document: unknown, origin = 'config'): Config {
  const result = configSchema.safeParse(document ?? {});
  if (!result.success) throw new SshgateError('CONFIG_INVALID', formatZodError(result.error, origin));
  return result.data;
}

/**
 * Reads the concrete `Host` entries of an OpenSSH client config (no wildcards or negations) and turns
 * them into sshgate hosts, resolving `HostName`, `User`, `Port` and `IdentityFile` as `ssh` would
 * (first value wins, `Match exec` is not run). Used when sshgate has no config file of its own.
 */
export function hostsFromSshConfig(text: string): Config['hosts'] {
  const parsed = SSHConfig.parse(text);
  const hosts: Config['hosts'] = {};
  for (const line of parsed) {
    if (line.type !== SSHConfig.DIRECTIVE || line.param.toLowerCase() !== 'host') continue;
    const values = typeof line.value === 'string' ? line.value.split(/\s+/u) : line.value.map((v) => v.val);
    for (const alias of values) {
      if (alias === '' || /[*?!]/u.test(alias) || !/^[A-Za-z0-9][\w.-]*$/u.test(alias) || alias in hosts) continue;
      const computed = parsed.compute(alias, { ignoreCase: true, matchExec: false }) as Record<string, string | string[] | undefined>;
      const first = (key: string): string | undefined => {
        const v = computed[key];
        return Array.isArray(v) ? v[0] : v;
      };
      const port = first('port');
      const identity = computed['identityfile'];
      const identities = identity === undefined ? [] : Array.isArray(identity) ? identity : [identity];
      const hostname = first('hostname');
      const user = first('user');
      hosts[alias] = {
        ...(hostname !== undefined ? { hostname: hostname.replaceAll('%h', alias) } : {}),
        ...(user !== undefined ? { user } : {}),
        ...(port !== undefined && /^\d+$/u.test(port) ? { port: Number(port) } : {}),
        ...(identities.length > 0 ? { identity_file: identities } : {}),
      };
    }
  }
  return hosts;
}

/**
 * Loads and validates the configuration.
 * Order: file (or ~/.ssh/config hosts at tier read when there is no file) < environment < flags.
 * `SSHGATE_TIER` and `--tier` may only lower the tier, never raise it (Security: an environment
 * the model can influence must not widen the policy).
 * @throws SshgateError CONFIG_INVALID naming the key path for an unknown key, a wrong type, a missing
 *   `${VAR}`, or an unreadable file.
 */
export async function loadConfig(flags: ConfigFlags = {}, env: Env = process.env, home: string = homedir()): Promise<LoadedConfig> {
  const file = findConfigFile(flags, env, home);
  let config: Config;
  let source: ConfigSource;
  if (file !== null) {
    let text: string;
    try {
      text = await readFile(file, 'utf8');
    } catch (err) {
      throw new SshgateError('CONFIG_INVALID', `cannot read config file ${file}: ${(err as Error).message}`, { cause: err });
    }
    let document: unknown;
    try {
      document = parseYaml(text, { prettyErrors: true });
    } catch (err) {
      throw new SshgateError('CONFIG_INVALID', `${file}: not valid YAML: ${(err as Error).message}`, { cause: err });
    }
    config = parseConfig(interpolateEnv(document, env), file);
    source = { kind: 'file', path: file };
  } else {
    const sshConfigPath = join(home, '.ssh', 'config');
    let hosts: Config['hosts'] = {};
    if (existsSync(sshConfigPath)) {
      try {
        hosts = hostsFromSshConfig(await readFile(sshConfigPath, 'utf8'));
      } catch (err) {
        throw new SshgateError('CONFIG_INVALID', `cannot read ${sshConfigPath}: ${(err as Error).message}`, { cause: err });
      }
    }
    config = parseConfig({ tier: 'read', hosts }, sshConfigPath);
    source = { kind: Object.keys(hosts).length > 0 ? 'ssh_config' : 'empty', path: existsSync(sshConfigPath) ? sshConfigPath : null };
  }

  for (const [origin, value] of [
    ['SSHGATE_TIER', env['SSHGATE_TIER']],
    ['--tier', flags.tier],
  ] as const) {
    if (value === undefined || value === '') continue;
    if (!(TIERS as readonly string[]).includes(value)) {
      throw new SshgateError('CONFIG_INVALID', `${origin}: must be one of ${TIERS.join(', ')} (got ${JSON.stringify(value)})`);
    }
    config.tier = minTier(config.tier, value as Tier);
  }

  const localUser = env['USER'] ?? safeUserName();
  const agentSocket = env['SSH_AUTH_SOCK'];
  const hosts = new Map<string, ResolvedHost>();
  for (const [alias, host] of Object.entries(config.hosts)) {
    const merged = { ...config.defaults, ...host };
    const identity = merged.identity_file;
    const identities = identity === undefined ? [] : Array.isArray(identity) ? identity : [identity];
    let agent: string | null = null;
    if (typeof merged.agent === 'string') agent = expandHome(merged.agent, home);
    else if (merged.agent === true) {
      if (agentSocket === undefined || agentSocket === '') {
        throw new SshgateError('CONFIG_INVALID', `config: hosts.${alias}.agent: true, but SSH_AUTH_SOCK is not set (start ssh-agent or give the socket path)`);
      }
      agent = agentSocket;
    }
    for (const [key, name] of [
      ['passphrase_env', merged.passphrase_env],
      ['password_env', merged.password_env],
      ['sudo_password_env', merged.sudo_password_env],
    ] as const) {
      if (name !== undefined && env[name] === undefined) {
        throw new SshgateError('CONFIG_INVALID', `config: hosts.${alias}.${key}: environment variable ${name} is not set`);
      }
    }
    hosts.set(alias, {
      alias,
      hostname: host.hostname ?? alias,
      port: merged.port ?? 22,
      user: merged.user ?? localUser,
      identityFiles: identities.map((p) => resolve(expandHome(p, home))),
      passphraseEnv: merged.passphrase_env ?? null,
      agent,
      passwordEnv: merged.password_env ?? null,
      tier: minTier(config.tier, merged.tier ?? config.tier),
      labels: merged.labels ?? [],
      allowExecute: merged.allow_execute ?? true,
      allowSftpRead: merged.allow_sftp_read ?? true,
      allowSftpWrite: merged.allow_sftp_write ?? true,
      roots: merged.roots ?? [],
      restrictedPaths: merged.restricted_paths ?? [],
      commands: merged.commands ?? null,
      rate: merged.rate ?? null,
      redactPaths: merged.redact_paths ?? [],
      jump: merged.jump ?? null,
      platform: merged.platform ?? 'posix',
      promptRegex: merged.prompt_regex ?? null,
      pagerOff: merged.pager_off ?? null,
      sudoPasswordEnv: merged.sudo_password_env ?? null,
      sudoPasswordCommand: merged.sudo_password_command ?? null,
    });
  }

  return deepFreeze({
    config,
    hosts,
    source,
    knownHostsFile: resolve(expandHome(config.known_hosts.file, home)),
    auditPath: resolve(expandHome(config.audit.path, home)),
    localPaths: config.local_paths.map((p) => resolve(expandHome(p, home))),
  });
}

function safeUserName(): string {
  try {
    return userInfo().username;
  } catch {
    return 'root';
  }
}

function deepFreeze<T>(value: T): T {
  if (value !== null && typeof value === 'object' && !Object.isFrozen(value)) {
    if (!(value instanceof Map)) Object.freeze(value);
    for (const item of value instanceof Map ? value.values() : Object.values(value)) deepFreeze(item);
  }
  return value;
}

/** Secret values this configuration reads from the environment (passwords, passphrases), for redaction. */
export function configuredSecrets(loaded: LoadedConfig, env: Env = process.env): string[] {
  const secrets = new Set<string>();
  for (const host of loaded.hosts.values()) {
    for (const name of [host.passphraseEnv, host.passwordEnv, host.sudoPasswordEnv]) {
      const value = name === null ? undefined : env[name];
      if (value !== undefined && value !== '') secrets.add(value);
    }
  }
  return [...secrets];
}
