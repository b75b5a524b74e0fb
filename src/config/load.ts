// Loads the configuration: file (or ~/.ssh/config when there is none) < environment < flags, validated, then frozen.
import { readFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { homedir, userInfo } from 'node:os';
import { join, resolve } from 'node:path';
import { parse as parseYaml } from 'yaml';
import type { z } from 'zod';
import { SshgateError } from '../errors.js';
import { minTier, TIERS, type Tier } from '../policy/tiers.js';
import { configSchema, type CommandRules, type Config, type HostConfig } from './schema.js';
import {
  concreteHostNames,
  parseProxyJump,
  parseSshConfig,
  readSshConfig,
  resolveSshConfig,
  type JumpSpec,
  type SshConfigContext,
  type SshConfigDocument,
  type SshConfigHost,
} from './ssh-config.js';

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
  /**
   * Alias of the jump host, or null. For a route taken from ssh_config `ProxyJump` this is the alias of the
   * last hop, which may be a synthetic one such as `bastion,ops@inner:2200` (see {@link ResolvedHost.jumpHost}).
   */
  jump: string | null;
  /**
   * The jump host itself, its own `jumpHost` chain included (set by {@link loadConfig}; null for a direct host).
   * A hop that comes from ssh_config and is not an sshgate host is a synthetic host: tier read, no policy, never
   * offered to tools, used only as a tunnel. Optional only so that hand-built hosts without jumps stay valid.
   */
  jumpHost?: ResolvedHost | null;
  /**
   * Further known_hosts files consulted for this host after `known_hosts.file` (ssh_config `UserKnownHostsFile`).
   * A key found in any of them is trusted; a conflicting key in any of them is a mismatch.
   */
  knownHostsFiles?: string[];
  /** The known_hosts mode for this host: the global one, or `strict` when ssh_config's StrictHostKeyChecking is stricter. */
  knownHostsMode?: 'strict' | 'accept-new';
  /** Handshake timeout for this host (ssh_config ConnectTimeout, never above pool.connect_timeout_ms). */
  connectTimeoutMs?: number;
  /** Keepalive for this host (ssh_config ServerAliveInterval / ServerAliveCountMax, never looser than pool.*). */
  keepaliveIntervalMs?: number;
  keepaliveCountMax?: number;
  platform: 'posix' | 'windows' | 'cli';
  promptRegex: string | null;
  pagerOff: string | null;
  sudoPasswordEnv: string | null;
  sudoPasswordCommand: string[] | null;
  /** Rules asking for human approval (config `approval`). */
  approval: string[];
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
  /** Absolute directory of pending approvals. */
  approvalsDir: string;
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

/** The resolution context for the local user (ssh's own view: passwd user name, uid, host name). */
function sshContext(home: string, env: Env): SshConfigContext {
  return { home, localUser: env['USER'] ?? safeUserName(), env };
}

/** Aliases sshgate can take from a `Host` line: concrete (no wildcard or negation) and valid as config keys. */
function importableAliases(doc: SshConfigDocument): string[] {
  return concreteHostNames(doc).filter((alias) => /^[A-Za-z0-9][\w.-]*$/u.test(alias));
}

/**
 * Reads the concrete `Host` entries of an OpenSSH client config (no wildcards or negations) and turns them into
 * sshgate host entries with the values `ssh` would use (see {@link resolveSshConfig}): `hostname`, and `user`,
 * `port` and `identity_file` (as written) when the config sets them. Hosts routed through a `ProxyCommand` are
 * left out: sshgate never runs local commands from ssh_config. `Include`s are read relative to `~/.ssh` of `home`.
 * @throws SshgateError CONFIG_INVALID for a config `ssh` itself would refuse.
 */
export function hostsFromSshConfig(text: string, home: string = homedir(), env: Env = process.env): Config['hosts'] {
  const ctx = sshContext(home, env);
  return hostEntries(parseSshConfig(text, ctx), ctx);
}

function hostEntries(doc: SshConfigDocument, ctx: SshConfigContext): Config['hosts'] {
  const hosts: Config['hosts'] = {};
  for (const alias of importableAliases(doc)) {
    const r = resolveSshConfig(doc, alias, ctx);
    if (r.proxyCommand !== null) continue;
    hosts[alias] = {
      ...(r.explicit.has('hostname') ? { hostname: r.hostname } : {}),
      ...(r.explicit.has('user') ? { user: r.user } : {}),
      ...(r.explicit.has('port') ? { port: r.port } : {}),
      ...(r.explicit.has('identityfile') ? { identity_file: r.identityFiles } : {}),
    };
  }
  return hosts;
}

/**
 * Loads and validates the configuration.
 * Order: file (or ~/.ssh/config hosts at tier read when there is no file) < environment < flags.
 * `SSHGATE_TIER` and `--tier` may only lower the tier, never raise it (Security: an environment
 * the model can influence must not widen the policy).
 *
 * ~/.ssh/config (of `home`, with its Includes) is applied to an sshgate host whose alias is written as a
 * concrete name on one of its `Host` lines, exactly as `ssh <alias>` would resolve it (`Host *` and `Match`
 * blocks included); hosts it does not name are left alone, even by `Host *`. For such a host:
 * 1. A value set in the sshgate file (the host's entry or `defaults`) wins over ssh_config.
 * 2. HostName, User, Port and ProxyJump fill what the file leaves unset; IdentityFile (the files that exist, or
 *    OpenSSH's default key files), IdentityAgent / SSH_AUTH_SOCK and IdentitiesOnly apply only when the file
 *    sets no authentication at all (identity_file, agent, password_env).
 * 3. ssh_config never widens policy: StrictHostKeyChecking only turns accept-new into strict (`no` is ignored),
 *    UserKnownHostsFile only adds files to check, ConnectTimeout and ServerAlive* only shorten sshgate's values.
 * Jump routes (`jump`, or ProxyJump hops) are linked into {@link ResolvedHost.jumpHost}; a cycle or a jump to an
 * unknown alias is refused.
 * @throws SshgateError CONFIG_INVALID naming the key path for an unknown key, a wrong type, a missing
 *   `${VAR}`, an unreadable file, a bad ~/.ssh/config, a jump cycle (with the chain) or an unknown jump alias.
 */
export async function loadConfig(flags: ConfigFlags = {}, env: Env = process.env, home: string = homedir()): Promise<LoadedConfig> {
  const file = findConfigFile(flags, env, home);
  const sshConfigPath = join(home, '.ssh', 'config');
  const sshCtx = sshContext(home, env);
  const sshDoc = existsSync(sshConfigPath) ? readSshConfig(sshConfigPath, sshCtx) : null;
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
    const hosts = sshDoc === null ? {} : hostEntries(sshDoc, sshCtx);
    config = parseConfig({ tier: 'read', hosts }, sshConfigPath);
    source = { kind: Object.keys(hosts).length > 0 ? 'ssh_config' : 'empty', path: sshDoc === null ? null : sshConfigPath };
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

  const resolver = new HostResolver(config, env, home, sshDoc, sshCtx, source.kind === 'file');
  const hosts = resolver.resolveAll();

  return deepFreeze({
    config,
    hosts,
    source,
    knownHostsFile: resolve(expandHome(config.known_hosts.file, home)),
    auditPath: resolve(expandHome(config.audit.path, home)),
    localPaths: config.local_paths.map((p) => resolve(expandHome(p, home))),
    approvalsDir: resolve(expandHome(config.approvals.dir, home)),
  });
}

/** The settings of the sshgate file that decide a host's connection, after `defaults` were merged in. */
type MergedHost = HostConfig;

/** Turns validated host entries (and ssh_config) into {@link ResolvedHost}s, linked through their jump hosts. */
class HostResolver {
  private readonly hosts = new Map<string, ResolvedHost>();
  /** Synthetic hops from ProxyJump, by alias. */
  private readonly hops = new Map<string, ResolvedHost>();
  private readonly localUser: string;

  constructor(
    private readonly config: Config,
    private readonly env: Env,
    private readonly home: string,
    private readonly sshDoc: SshConfigDocument | null,
    private readonly sshCtx: SshConfigContext,
    /** False when the hosts were imported from ssh_config itself: their entries then are ssh_config's values. */
    private readonly isOwnFile: boolean,
  ) {
    this.localUser = env['USER'] ?? safeUserName();
  }

  resolveAll(): Map<string, ResolvedHost> {
    const named = new Set(this.sshDoc === null ? [] : concreteHostNames(this.sshDoc));
    const routes = new Map<string, { jump: string | null; fromDefaults: boolean; proxyJump: JumpSpec[] | null }>();
    for (const [alias, entry] of Object.entries(this.config.hosts)) {
      const own: MergedHost = this.isOwnFile ? { ...this.config.defaults, ...entry } : {};
      const ssh = this.sshDoc !== null && named.has(alias) ? resolveSshConfig(this.sshDoc, alias, this.sshCtx) : null;
      if (this.isOwnFile && ssh?.proxyCommand != null && own.jump === undefined && entry.hostname === undefined) {
        throw new SshgateError(
          'CONFIG_INVALID',
          `config: hosts.${alias}: ~/.ssh/config reaches it through a ProxyCommand, which sshgate does not run; set hosts.${alias}.jump (or hostname and port)`,
        );
      }
      if (own.platform === 'cli' && own.prompt_regex === undefined) {
        throw new SshgateError('CONFIG_INVALID', `config: hosts.${alias}.prompt_regex: required when platform is cli (the device prompt, e.g. "^[\\\\w.-]+(\\\\(config[^)]*\\\\))?[>#] ?$")`);
      }
      this.hosts.set(alias, this.build(alias, own, ssh, this.config.hosts[alias]?.hostname));
      routes.set(alias, {
        jump: own.jump ?? null,
        fromDefaults: entry.jump === undefined && own.jump !== undefined,
        proxyJump: ssh?.proxyJump != null ? parseProxyJump(ssh.proxyJump, `~/.ssh/config ProxyJump of ${alias}`) : null,
      });
    }
    // Jumps are linked once every host exists: 1. sshgate's `jump` (an alias), 2. else ssh_config's ProxyJump.
    for (const [alias, route] of routes) {
      const host = this.hosts.get(alias);
      if (host === undefined) continue;
      // A `jump` inherited from defaults does not apply to the jump host itself.
      const jump = route.fromDefaults && route.jump === alias ? null : route.jump;
      if (jump !== null) {
        const target = this.hosts.get(jump);
        if (target === undefined) throw new SshgateError('CONFIG_INVALID', `config: hosts.${alias}.jump: ${jump} is not a configured host`);
        host.jump = jump;
        host.jumpHost = target;
      } else if (route.proxyJump !== null) {
        host.jumpHost = this.hopChain(route.proxyJump, [alias]);
        host.jump = host.jumpHost.alias;
      } else {
        host.jump = null;
        host.jumpHost = null;
      }
    }
    for (const alias of this.hosts.keys()) this.checkCycle(alias);
    return this.hosts;
  }

  /** Refuses a jump chain that comes back to a host already on it, naming the chain. */
  private checkCycle(alias: string): void {
    const chain: string[] = [];
    for (let host = this.hosts.get(alias) ?? null; host !== null; host = host.jumpHost ?? null) {
      if (chain.includes(host.alias)) {
        throw new SshgateError('CONFIG_INVALID', `config: hosts.${alias}.jump: the jump chain ${[...chain, host.alias].join(' -> ')} is a cycle`);
      }
      chain.push(host.alias);
    }
  }

  /**
   * The ResolvedHost of the last hop of a ProxyJump list, each hop tunnelled through the one before, like
   * `ssh -J`: the first hop's own ssh_config ProxyJump still applies, the later hops' do not. A first hop named
   * like an sshgate host (without user or port) is that host, so its pooled connection is shared.
   * `path` is the chain so far, for the cycle message.
   */
  private hopChain(specs: readonly JumpSpec[], path: readonly string[]): ResolvedHost {
    let previous: ResolvedHost | null = null;
    let chainAlias = '';
    for (const [index, spec] of specs.entries()) {
      chainAlias = index === 0 ? spec.spec : `${chainAlias},${spec.spec}`;
      const configured = index === 0 && spec.user === null && spec.port === null ? this.hosts.get(spec.host) : undefined;
      if (configured !== undefined) {
        previous = configured;
        continue;
      }
      if (path.includes(spec.host)) {
        throw new SshgateError('CONFIG_INVALID', `~/.ssh/config: the ProxyJump chain ${[...path, spec.host].join(' -> ')} is a cycle`);
      }
      let hop = this.hops.get(chainAlias);
      if (hop === undefined) {
        const ssh = this.sshDoc === null ? null : resolveSshConfig(this.sshDoc, spec.host, this.sshCtx);
        hop = this.build(chainAlias, { ...this.config.defaults, ...(spec.user === null ? {} : { user: spec.user }), ...(spec.port === null ? {} : { port: spec.port }) }, ssh, ssh?.hostname ?? spec.host);
        hop.tier = 'read';
        this.hops.set(chainAlias, hop);
        if (index === 0 && ssh?.proxyJump != null) {
          hop.jumpHost = this.hopChain(parseProxyJump(ssh.proxyJump, `~/.ssh/config ProxyJump of ${spec.host}`), [...path, spec.host]);
          hop.jump = hop.jumpHost.alias;
        } else {
          hop.jumpHost = previous;
          hop.jump = previous?.alias ?? null;
        }
      }
      previous = hop;
    }
    if (previous === null) throw new SshgateError('CONFIG_INVALID', '~/.ssh/config: an empty ProxyJump');
    return previous;
  }

  /** One host from its sshgate entry (`entry`), the file's settings merged with defaults (`own`) and ssh_config. */
  private build(alias: string, own: MergedHost, ssh: SshConfigHost | null, hostname: string | undefined): ResolvedHost {
    const { config, env, home } = this;
    const pool = config.pool;
    const identity = own.identity_file;
    let identities = identity === undefined ? [] : Array.isArray(identity) ? identity : [identity];
    identities = identities.map((p) => resolve(expandHome(p, home)));
    let agent: string | null = null;
    if (typeof own.agent === 'string') agent = expandHome(own.agent, home);
    else if (own.agent === true) {
      const socket = env['SSH_AUTH_SOCK'];
      if (socket === undefined || socket === '') {
        throw new SshgateError('CONFIG_INVALID', `config: hosts.${alias}.agent: true, but SSH_AUTH_SOCK is not set (start ssh-agent or give the socket path)`);
      }
      agent = socket;
    }
    const hasOwnAuth = own.identity_file !== undefined || own.agent !== undefined || own.password_env !== undefined;
    if (!hasOwnAuth && ssh !== null) {
      // ssh skips identity files that do not exist; so does sshgate for files named by ssh_config.
      identities = ssh.identityFilePaths.filter((p) => existsSync(p));
      const socket = ssh.identityAgent === null || ssh.identityAgent === 'SSH_AUTH_SOCK' ? env['SSH_AUTH_SOCK'] : ssh.identityAgent === 'none' ? undefined : ssh.identityAgent;
      // ssh2 offers every agent key; IdentitiesOnly asks for the configured files only, so the agent is left out.
      agent = socket === undefined || socket === '' || ssh.identitiesOnly ? null : socket;
    }
    for (const [key, name] of [
      ['passphrase_env', own.passphrase_env],
      ['password_env', own.password_env],
      ['sudo_password_env', own.sudo_password_env],
    ] as const) {
      if (name !== undefined && env[name] === undefined) {
        throw new SshgateError('CONFIG_INVALID', `config: hosts.${alias}.${key}: environment variable ${name} is not set`);
      }
    }
    const knownHostsFile = resolve(expandHome(config.known_hosts.file, home));
    const set = (keyword: string): boolean => ssh?.explicit.has(keyword) === true;
    const extraKnownHosts = set('userknownhostsfile')
      ? [...new Set((ssh?.userKnownHostsFiles ?? []).map((f) => resolve(f)))].filter((f) => f !== knownHostsFile && f !== '/dev/null')
      : [];
    // Security: ssh_config may make host key checking stricter, never looser (`no` and `ask` do not widen).
    const isStricter = set('stricthostkeychecking') && (ssh?.strictHostKeyChecking === 'yes' || ssh?.strictHostKeyChecking === 'ask');
    const shorter = (configured: number, seconds: number | null | undefined): number =>
      seconds === null || seconds === undefined || seconds <= 0 ? configured : Math.min(configured, seconds * 1000);
    return {
      alias,
      hostname: hostname ?? ssh?.hostname ?? alias,
      port: own.port ?? (set('port') ? ssh?.port : undefined) ?? 22,
      user: own.user ?? (set('user') ? ssh?.user : undefined) ?? this.localUser,
      identityFiles: identities,
      passphraseEnv: own.passphrase_env ?? null,
      agent,
      passwordEnv: own.password_env ?? null,
      tier: minTier(config.tier, own.tier ?? config.tier),
      labels: own.labels ?? [],
      allowExecute: own.allow_execute ?? true,
      allowSftpRead: own.allow_sftp_read ?? true,
      allowSftpWrite: own.allow_sftp_write ?? true,
      roots: own.roots ?? [],
      restrictedPaths: own.restricted_paths ?? [],
      commands: own.commands ?? null,
      rate: own.rate ?? null,
      redactPaths: own.redact_paths ?? [],
      jump: null,
      jumpHost: null,
      platform: own.platform ?? 'posix',
      promptRegex: own.prompt_regex ?? null,
      pagerOff: own.pager_off ?? null,
      sudoPasswordEnv: own.sudo_password_env ?? null,
      sudoPasswordCommand: own.sudo_password_command ?? null,
      approval: own.approval ?? [],
      knownHostsFiles: extraKnownHosts,
      knownHostsMode: isStricter ? 'strict' : config.known_hosts.mode,
      connectTimeoutMs: shorter(pool.connect_timeout_ms, set('connecttimeout') ? ssh?.connectTimeoutS : null),
      keepaliveIntervalMs: shorter(pool.keepalive_interval_ms, set('serveraliveinterval') ? ssh?.serverAliveIntervalS : null),
      keepaliveCountMax: set('serveralivecountmax') && (ssh?.serverAliveCountMax ?? 0) > 0 ? Math.min(pool.keepalive_count_max, ssh?.serverAliveCountMax ?? 0) : pool.keepalive_count_max,
    };
  }
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
