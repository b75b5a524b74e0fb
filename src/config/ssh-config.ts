// OpenSSH client configuration (ssh_config(5)) resolved for one host the way `ssh -G host` resolves it, on top of
// the `ssh-config` parser: its own `compute()` lacks Include, the final pass, `%` tokens and exact pattern rules.
import { createHash } from 'node:crypto';
import { globSync, readFileSync, statSync } from 'node:fs';
import { hostname as osHostname } from 'node:os';
import { isAbsolute, join } from 'node:path';
import { isIP } from 'node:net';
import SSHConfig, { type Line } from 'ssh-config';
import { SshgateError } from '../errors.js';

/** OpenSSH's READCONF_MAX_DEPTH: Include nesting deeper than this is an error. */
const MAX_INCLUDE_DEPTH = 16;
/** OpenSSH's default identity files, in the order `ssh -G` prints them (pathnames.h). */
export const DEFAULT_IDENTITY_FILES = [
  '~/.ssh/id_rsa',
  '~/.ssh/id_ecdsa',
  '~/.ssh/id_ecdsa_sk',
  '~/.ssh/id_ed25519',
  '~/.ssh/id_ed25519_sk',
  '~/.ssh/id_xmss',
  '~/.ssh/id_dsa',
] as const;
const DEFAULT_USER_KNOWN_HOSTS_FILES = ['~/.ssh/known_hosts', '~/.ssh/known_hosts2'] as const;

/** One directive of a parsed file, with where it came from (for messages). */
interface OptionNode {
  kind: 'option';
  keyword: string;
  args: string[];
  where: string;
}
interface SectionNode {
  kind: 'host' | 'match';
  args: string[];
  body: ConfigNode[];
  where: string;
}
interface IncludeNode {
  kind: 'include';
  /** Each included file's nodes, in glob (sorted) order. */
  files: ConfigNode[][];
  where: string;
}
type ConfigNode = OptionNode | SectionNode | IncludeNode;

/**
 * A parsed OpenSSH client config with every `Include` read and parsed, ready for {@link resolveSshConfig}.
 * Immutable; resolving a host never touches the file system again.
 */
export interface SshConfigDocument {
  /** The top file, for messages (null for text given directly). */
  readonly path: string | null;
  readonly nodes: readonly ConfigNode[];
}

/** What the resolution needs to know about this machine (for `~`, `%d`, `%u`, `%i`, `%l`, `${VAR}`, default User). */
export interface SshConfigContext {
  /** The local user's home directory (`~`, `%d`, relative `Include`s go to `<home>/.ssh`). */
  home: string;
  /** The local user name (`%u`, `Match localuser`, and the default `User`). */
  localUser: string;
  /** The local uid (`%i`). */
  uid?: number;
  /** The local host name (`%l`; `%L` is its first label). */
  localHost?: string;
  /** Environment for `${VAR}` in IdentityFile, IdentityAgent and UserKnownHostsFile. */
  env?: Readonly<Record<string, string | undefined>>;
}

/** The result of resolving a host: each field is what `ssh -G` prints for it, OpenSSH defaults applied. */
export interface SshConfigHost {
  /** The name looked up (`ssh -G` prints it as `host`). */
  host: string;
  /** `HostName` with `%h` expanded, lowercased (unless an IP address), or the host itself. */
  hostname: string;
  user: string;
  port: number;
  /** `IdentityFile` values as written (tokens and `~` not expanded, like `ssh -G`), or OpenSSH's defaults. */
  identityFiles: string[];
  /** {@link SshConfigHost.identityFiles} with `~`, `%` tokens and `${VAR}` expanded to absolute paths. */
  identityFilePaths: string[];
  identitiesOnly: boolean;
  /** Expanded `IdentityAgent`: a socket path, `none`, `SSH_AUTH_SOCK`; null when unset. */
  identityAgent: string | null;
  /** `ProxyJump` as written; null when unset or `none`. */
  proxyJump: string | null;
  /** `ProxyCommand` as written; null when unset or `none` (sshgate never runs it). */
  proxyCommand: string | null;
  /** Expanded `UserKnownHostsFile` paths (OpenSSH's defaults when unset). */
  userKnownHostsFiles: string[];
  /** `yes` | `no` | `ask` | `accept-new` (`off` reads as `no`); OpenSSH's default is `ask`. */
  strictHostKeyChecking: 'yes' | 'no' | 'ask' | 'accept-new';
  /** Seconds, or null when unset (`none`). */
  connectTimeoutS: number | null;
  serverAliveIntervalS: number;
  serverAliveCountMax: number;
  /** Lowercased keywords the config set for this host (values left at OpenSSH's defaults are absent). */
  explicit: ReadonlySet<string>;
}

function configError(where: string, message: string): SshgateError {
  return new SshgateError('CONFIG_INVALID', `${where}: ${message}`);
}

/** The argument words of a parsed line: multi-value directives come as arrays, the others as one string. */
function argsOf(line: Line): string[] {
  if (line.type !== SSHConfig.DIRECTIVE) return [];
  const value = line.value;
  if (typeof value === 'string') return value === '' ? [] : [value];
  return value.map((v) => v.val);
}

function toNodes(lines: readonly Line[], file: string, ctx: SshConfigContext, depth: number): ConfigNode[] {
  const nodes: ConfigNode[] = [];
  for (const line of lines) {
    const where = file;
    if (line.type === SSHConfig.DIRECTIVE) {
      const keyword = line.param.toLowerCase();
      const args = argsOf(line);
      if (keyword === 'host' || keyword === 'match') {
        const body = 'config' in line ? toNodes(line.config, file, ctx, depth) : [];
        nodes.push({ kind: keyword, args, body, where });
      } else if (keyword === 'include') {
        nodes.push({ kind: 'include', files: readIncludes(args, where, ctx, depth + 1), where });
      } else {
        nodes.push({ kind: 'option', keyword, args, where });
      }
    }
  }
  return nodes;
}

/**
 * The files an `Include` names: `~` expanded, a relative path taken from `~/.ssh` (ssh_config(5), "Include"),
 * globbed and sorted like glob(3). A pattern that matches nothing is no error, as for ssh.
 */
function readIncludes(patterns: readonly string[], where: string, ctx: SshConfigContext, depth: number): ConfigNode[][] {
  if (depth > MAX_INCLUDE_DEPTH) throw configError(where, `Include nested more than ${MAX_INCLUDE_DEPTH} deep (a loop?)`);
  const files: ConfigNode[][] = [];
  for (const pattern of patterns) {
    const expanded = expandTilde(pattern, ctx.home);
    const absolute = isAbsolute(expanded) ? expanded : join(ctx.home, '.ssh', expanded);
    const matches = /[*?[]/u.test(absolute) ? globSync(absolute).sort() : [absolute];
    for (const path of matches) {
      let isFile: boolean;
      try {
        isFile = statSync(path, { throwIfNoEntry: false })?.isFile() === true;
      } catch (err) {
        throw configError(where, `Include ${path}: ${(err as Error).message}`);
      }
      if (!isFile) continue;
      files.push(parseFile(path, ctx, depth));
    }
  }
  return files;
}

function parseText(text: string, file: string): Line[] {
  try {
    return [...SSHConfig.parse(text)];
  } catch (err) {
    throw configError(file, `cannot parse: ${(err as Error).message}`);
  }
}

function parseFile(path: string, ctx: SshConfigContext, depth: number): ConfigNode[] {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    throw configError(path, `cannot read: ${(err as Error).message}`);
  }
  return toNodes(parseText(text, path), path, ctx, depth);
}

/**
 * Reads an OpenSSH client config file and every file it includes (recursively, at most 16 deep).
 * @throws SshgateError CONFIG_INVALID naming the file when it cannot be read or parsed.
 */
export function readSshConfig(path: string, ctx: SshConfigContext): SshConfigDocument {
  return { path, nodes: parseFile(path, ctx, 0) };
}

/** Parses config text (its Includes are still read from disk). `name` stands for the file in messages. */
export function parseSshConfig(text: string, ctx: SshConfigContext, name = 'ssh_config'): SshConfigDocument {
  return { path: null, nodes: toNodes(parseText(text, name), name, ctx, 0) };
}

/** OpenSSH `match_pattern`: `*` matches any run, `?` exactly one character; nothing else is special. */
export function matchPattern(text: string, pattern: string): boolean {
  let t = 0;
  let p = 0;
  let star = -1;
  let starText = 0;
  while (t < text.length) {
    const pc = pattern[p];
    if (pc === '*') {
      star = p++;
      starText = t;
    } else if (pc !== undefined && (pc === '?' || pc === text[t])) {
      p++;
      t++;
    } else if (star >= 0) {
      p = star + 1;
      t = ++starText;
    } else {
      return false;
    }
  }
  while (pattern[p] === '*') p++;
  return p === pattern.length;
}

/**
 * OpenSSH `match_pattern_list` over a comma-separated list: 1 for a match, -1 when a negated `!pattern` matched
 * (that vetoes the list), 0 for no match. `lower` compares case-insensitively (match_hostname).
 */
export function matchPatternList(text: string, list: string, lower: boolean): -1 | 0 | 1 {
  const subject = lower ? text.toLowerCase() : text;
  let result: 0 | 1 = 0;
  for (const raw of list.split(',')) {
    const negated = raw.startsWith('!');
    const body = negated ? raw.slice(1) : raw;
    const pattern = lower ? body.toLowerCase() : body;
    if (matchPattern(subject, pattern)) {
      if (negated) return -1;
      result = 1;
    }
  }
  return result;
}

/** `Host` line semantics (readconf.c oHost): some word matches (case-sensitively) and no negated word does. */
function hostLineMatches(words: readonly string[], host: string): boolean {
  let active = false;
  for (const word of words) {
    const negated = word.startsWith('!');
    if (matchPattern(host, negated ? word.slice(1) : word)) {
      if (negated) return false;
      active = true;
    }
  }
  return active;
}

/** Mutable state of one resolution pass. */
interface PassState {
  /** The name `Host` lines match: the host as given, then in the final pass the resolved host name. */
  hostForHostLines: string;
  originalHost: string;
  isFinalPass: boolean;
  wantsFinalPass: boolean;
  options: Map<string, { args: string[]; where: string }>;
  identityFiles: string[];
  ctx: SshConfigContext;
}

/** The name `Match host` compares: the HostName so far with `%h` expanded, or the host (readconf.c match_cfg_line). */
function matchHostName(state: PassState): string {
  const hostname = state.options.get('hostname')?.args[0];
  if (state.isFinalPass) return state.hostForHostLines;
  if (hostname === undefined) return state.originalHost;
  return expandHostName(hostname, state.originalHost, 'HostName');
}

/**
 * `Match` criteria, as OpenSSH 9.2 evaluates them. A line with `exec` (sshgate runs no local command) or a
 * criterion OpenSSH 9.2 does not know never matches, negated or not.
 */
function matchLineMatches(words: readonly string[], state: PassState, where: string): boolean {
  let result = true;
  let undecidable = false;
  let attributes = 0;
  for (let i = 0; i < words.length; i += 1) {
    const raw = words[i] ?? '';
    const negate = raw.startsWith('!');
    const attribute = (negate ? raw.slice(1) : raw).toLowerCase();
    if (attribute === 'all') {
      // readconf.c: "all" may follow only canonical/final, and nothing may follow it.
      if (attributes > 1 || i + 1 < words.length) throw configError(where, "Match 'all' cannot be combined with other criteria");
      return result && !negate;
    }
    attributes += 1;
    if (attribute === 'canonical' || attribute === 'final') {
      if (attribute === 'final') state.wantsFinalPass = true;
      if (state.isFinalPass === negate) result = false;
      continue;
    }
    const argument = words[i + 1];
    i += 1;
    if (argument === undefined) throw configError(where, `Match ${attribute} needs an argument`);
    let matched: boolean;
    switch (attribute) {
      case 'host':
        matched = matchPatternList(matchHostName(state), argument, true) === 1;
        break;
      case 'originalhost':
        matched = matchPatternList(state.originalHost, argument, true) === 1;
        break;
      case 'user':
        matched = matchPatternList(state.options.get('user')?.args[0] ?? state.ctx.localUser, argument, false) === 1;
        break;
      case 'localuser':
        matched = matchPatternList(state.ctx.localUser, argument, false) === 1;
        break;
      default:
        // Security: `exec` would run a local command, which a config line never makes sshgate do; criteria newer
        // than OpenSSH 9.2 (tagged, localnetwork, ...) cannot be judged. Either way the block does not apply,
        // whatever its negation says.
        undecidable = true;
        continue;
    }
    if (matched === negate) result = false;
  }
  return result && !undecidable;
}

function applyOption(node: OptionNode, state: PassState): void {
  if (node.keyword === 'identityfile') {
    const file = node.args[0];
    if (file !== undefined && !state.identityFiles.includes(file)) state.identityFiles.push(file);
    return;
  }
  // ssh_config(5): "the first obtained value for each parameter is used".
  if (state.options.has(node.keyword)) return;
  // readconf.c: ProxyCommand and ProxyJump exclude each other, whichever comes first wins.
  if (node.keyword === 'proxyjump' && state.options.has('proxycommand')) return;
  if (node.keyword === 'proxycommand' && state.options.has('proxyjump')) return;
  state.options.set(node.keyword, { args: node.args, where: node.where });
}

/** Walks nodes like readconf.c: `active` is the current block's state; an Include restores it afterwards. */
function walk(nodes: readonly ConfigNode[], state: PassState, active: boolean, neverMatch: boolean): void {
  let isActive = active;
  for (const node of nodes) {
    switch (node.kind) {
      case 'host':
        isActive = !neverMatch && hostLineMatches(node.args, state.hostForHostLines);
        walk(node.body, state, isActive, neverMatch);
        break;
      case 'match':
        // readconf.c evaluates a Match line even where nothing may match (so `final` is still noticed).
        isActive = matchLineMatches(node.args, state, node.where) && !neverMatch;
        walk(node.body, state, isActive, neverMatch);
        break;
      case 'include':
        // readconf.c: an Include in an inactive block is read with SSHCONF_NEVERMATCH; activity is restored after.
        for (const file of node.files) walk(file, state, isActive, neverMatch || !isActive);
        break;
      case 'option':
        if (isActive) applyOption(node, state);
        break;
    }
  }
}

/** Expands `%h` and `%%` in HostName (the only tokens it takes), then lowercases like ssh unless it is an address. */
function expandHostName(value: string, host: string, keyword: string): string {
  const expanded = expandPercent(value, { h: host }, keyword);
  return isIP(expanded) === 0 ? expanded.toLowerCase() : expanded;
}

/** OpenSSH percent_expand: each `%x` from `tokens`, `%%` a literal `%`; an unknown token is an error. */
function expandPercent(value: string, tokens: Readonly<Record<string, string>>, keyword: string): string {
  return value.replace(/%(.?)/gu, (_match, key: string) => {
    if (key === '%') return '%';
    const replacement = tokens[key];
    if (replacement === undefined) {
      throw new SshgateError('CONFIG_INVALID', `ssh_config ${keyword} ${value}: unknown or unsupported token %${key}`);
    }
    return replacement;
  });
}

/** `${VAR}` from the environment (OpenSSH dollar_expand); an unset variable is an error, as for ssh. */
function expandDollar(value: string, env: Readonly<Record<string, string | undefined>>, keyword: string): string {
  return value.replace(/\$\{([A-Za-z_][A-Za-z0-9_]*)\}/gu, (_match, name: string) => {
    const found = env[name];
    if (found === undefined) throw new SshgateError('CONFIG_INVALID', `ssh_config ${keyword} ${value}: environment variable ${name} is not set`);
    return found;
  });
}

function expandTilde(path: string, home: string): string {
  if (path === '~') return home;
  if (path.startsWith('~/')) return join(home, path.slice(2));
  return path;
}

function parseNumber(value: string | undefined, keyword: string, where: string, min: number): number | null {
  if (value === undefined) return null;
  if (!/^\d+$/u.test(value) || Number(value) < min) throw configError(where, `${keyword} ${value}: not a valid number`);
  return Number(value);
}

function parseYesNo(value: string | undefined): boolean | null {
  if (value === undefined) return null;
  return ['yes', 'true'].includes(value.toLowerCase());
}

/**
 * Resolves `host` the way `ssh -G -F <file> host` does with OpenSSH 9.2: one pass in file order with Host
 * patterns matched case-sensitively against the name given, `Match` criteria (host, originalhost, user,
 * localuser, all, canonical, final, negation with `!`), Includes in place, the first value of each keyword
 * winning (IdentityFile accumulating); then, when a `Match final` or `Match canonical` was seen, a second pass in
 * which Host patterns match the resolved host name. Differences from ssh, on purpose: `Match exec` never matches
 * (sshgate runs no command from the config) and CanonicalizeHostname is not performed.
 * @throws SshgateError CONFIG_INVALID for a bad number, an unknown `%` token, an unset `${VAR}` or a bad Match line.
 */
export function resolveSshConfig(doc: SshConfigDocument, host: string, ctx: SshConfigContext): SshConfigHost {
  const state: PassState = {
    hostForHostLines: host,
    originalHost: host,
    isFinalPass: false,
    wantsFinalPass: false,
    options: new Map(),
    identityFiles: [],
    ctx,
  };
  walk(doc.nodes, state, true, false);
  const first = (keyword: string): string | undefined => state.options.get(keyword)?.args[0];
  const whereOf = (keyword: string): string => state.options.get(keyword)?.where ?? doc.path ?? 'ssh_config';
  const hostnameRaw = first('hostname');
  const hostname = hostnameRaw === undefined ? lowerUnlessIp(host) : expandHostName(hostnameRaw, host, 'HostName');
  if (state.wantsFinalPass) {
    // ssh.c: the configuration is read again with the resolved name; values already set keep winning.
    state.isFinalPass = true;
    state.hostForHostLines = hostname;
    state.options.set('hostname', { args: [hostname], where: whereOf('hostname') });
    walk(doc.nodes, state, true, false);
  }

  const user = first('user') ?? ctx.localUser;
  const port = parseNumber(first('port'), 'Port', whereOf('port'), 1) ?? 22;
  if (port > 65535) throw configError(whereOf('port'), `Port ${port}: out of range`);
  const localHost = ctx.localHost ?? osHostname();
  const tokens: Record<string, string> = {
    C: createHash('sha1').update(`${localHost}${hostname}${port}${user}`).digest('hex'),
    L: localHost.split('.')[0] ?? localHost,
    i: String(ctx.uid ?? process.getuid?.() ?? 0),
    k: first('hostkeyalias') ?? host,
    l: localHost,
    n: host,
    p: String(port),
    d: ctx.home,
    h: hostname,
    r: user,
    u: ctx.localUser,
  };
  const env = ctx.env ?? process.env;
  const expandPath = (value: string, keyword: string): string =>
    expandDollar(expandPercent(expandTilde(value, ctx.home), tokens, keyword), env, keyword);

  const isIdentitySet = state.identityFiles.length > 0;
  const identityFiles = isIdentitySet ? [...state.identityFiles] : [...DEFAULT_IDENTITY_FILES];
  const agent = first('identityagent');
  const jump = first('proxyjump');
  const command = state.options.get('proxycommand')?.args.join(' ');
  const knownHosts = state.options.get('userknownhostsfile')?.args ?? [...DEFAULT_USER_KNOWN_HOSTS_FILES];
  const strictRaw = (first('stricthostkeychecking') ?? 'ask').toLowerCase();
  const strict = strictRaw === 'off' || strictRaw === 'false' ? 'no' : strictRaw === 'true' ? 'yes' : strictRaw;
  if (!['yes', 'no', 'ask', 'accept-new'].includes(strict)) {
    throw configError(whereOf('stricthostkeychecking'), `StrictHostKeyChecking ${strictRaw}: not a valid value`);
  }
  const connectTimeout = first('connecttimeout');
  const explicit = new Set(state.options.keys());
  if (hostnameRaw === undefined) explicit.delete('hostname');
  if (isIdentitySet) explicit.add('identityfile');
  return {
    host,
    hostname,
    user,
    port,
    identityFiles,
    identityFilePaths: identityFiles.map((f) => expandPath(f, 'IdentityFile')),
    identitiesOnly: parseYesNo(first('identitiesonly')) ?? false,
    identityAgent: agent === undefined ? null : agent === 'none' || agent === 'SSH_AUTH_SOCK' ? agent : expandPath(agent, 'IdentityAgent'),
    proxyJump: jump === undefined || jump.toLowerCase() === 'none' ? null : jump,
    proxyCommand: command === undefined || command.toLowerCase() === 'none' ? null : command,
    userKnownHostsFiles: knownHosts.map((f) => expandPath(f, 'UserKnownHostsFile')),
    strictHostKeyChecking: strict as SshConfigHost['strictHostKeyChecking'],
    connectTimeoutS: connectTimeout === undefined || connectTimeout === 'none' ? null : parseNumber(connectTimeout, 'ConnectTimeout', whereOf('connecttimeout'), 0),
    serverAliveIntervalS: parseNumber(first('serveraliveinterval'), 'ServerAliveInterval', whereOf('serveraliveinterval'), 0) ?? 0,
    serverAliveCountMax: parseNumber(first('serveralivecountmax'), 'ServerAliveCountMax', whereOf('serveralivecountmax'), 0) ?? 3,
    explicit,
  };
}

function lowerUnlessIp(host: string): string {
  return isIP(host) === 0 ? host.toLowerCase() : host;
}

/**
 * True when `alias` is written as a concrete name (no wildcard, not negated) on some `Host` line of the document,
 * Includes counted. This decides which sshgate hosts the config is applied to (see docs/configuration.md).
 */
export function namesHost(doc: SshConfigDocument, alias: string): boolean {
  return concreteHostNames(doc).includes(alias);
}

/** Every concrete name on a `Host` line (no `*`, `?` or `!`), in file order, each once. */
export function concreteHostNames(doc: SshConfigDocument): string[] {
  const names: string[] = [];
  const visit = (nodes: readonly ConfigNode[]): void => {
    for (const node of nodes) {
      if (node.kind === 'host') {
        for (const word of node.args) if (!/[*?!]/u.test(word) && !names.includes(word)) names.push(word);
        visit(node.body);
      } else if (node.kind === 'match') visit(node.body);
      else if (node.kind === 'include') for (const file of node.files) visit(file);
    }
  };
  visit(doc.nodes);
  return names;
}

/** One hop of a `ProxyJump` list. */
export interface JumpSpec {
  /** The hop as written, e.g. `ops@bastion:2222`. */
  spec: string;
  host: string;
  user: string | null;
  port: number | null;
}

/**
 * Splits a `ProxyJump` value (`[user@]host[:port]` or `ssh://[user@]host[:port]`, comma-separated, IPv6 in
 * brackets) into hops, first hop first.
 * @throws SshgateError CONFIG_INVALID for an empty or malformed hop.
 */
export function parseProxyJump(value: string, where = 'ProxyJump'): JumpSpec[] {
  return value.split(',').map((raw) => {
    const spec = raw.trim();
    const text = spec.startsWith('ssh://') ? spec.slice('ssh://'.length).replace(/\/$/u, '') : spec;
    const at = text.lastIndexOf('@');
    const user = at >= 0 ? text.slice(0, at) : null;
    const rest = at >= 0 ? text.slice(at + 1) : text;
    const match = /^(?:\[([^\]]+)\]|([^:[\]]+))(?::(\d+))?$/u.exec(rest);
    const host = match?.[1] ?? match?.[2];
    const port = match?.[3] === undefined ? null : Number(match[3]);
    if (host === undefined || host === '' || user === '' || (port !== null && (port < 1 || port > 65535))) {
      throw new SshgateError('CONFIG_INVALID', `${where}: cannot read the jump host ${JSON.stringify(spec)} ([user@]host[:port])`);
    }
    return { spec, host, user, port };
  });
}
