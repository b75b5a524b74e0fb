// ~/.ssh/config resolution: every case is checked against OpenSSH itself (`ssh -G -F file host`).
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { hostname, tmpdir, userInfo } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { loadConfig } from '../../../src/config/load.js';
import {
  matchPatternList,
  parseProxyJump,
  parseSshConfig,
  readSshConfig,
  resolveSshConfig,
  type SshConfigContext,
} from '../../../src/config/ssh-config.js';
import { SshgateError } from '../../../src/errors.js';

const me = userInfo();
/** The context ssh itself uses: the passwd home (not $HOME), the login name, uid and host name. */
const realCtx: SshConfigContext = { home: me.homedir, localUser: me.username, uid: me.uid, localHost: hostname(), env: { ...process.env } };

function tempDir(): string {
  return mkdtempSync(join(tmpdir(), 'sshgate-sshcfg-'));
}

/** `ssh -G -F file host`, as a keyword -> values map (repeated keywords such as identityfile collect). */
function sshG(file: string, host: string): Map<string, string[]> {
  const out = execFileSync('ssh', ['-G', '-F', file, host], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
  const map = new Map<string, string[]>();
  for (const line of out.split('\n')) {
    const space = line.indexOf(' ');
    if (space < 0) continue;
    const key = line.slice(0, space);
    map.set(key, [...(map.get(key) ?? []), line.slice(space + 1)]);
  }
  return map;
}

/** Our resolution in `ssh -G`'s vocabulary, for the keywords sshgate uses. */
function ours(file: string, host: string): Record<string, unknown> {
  const r = resolveSshConfig(readSshConfig(file, realCtx), host, realCtx);
  const strict = { yes: 'true', no: 'false', ask: 'ask', 'accept-new': 'accept-new' }[r.strictHostKeyChecking];
  return {
    host: r.host,
    hostname: r.hostname,
    user: r.user,
    port: String(r.port),
    identityfile: r.identityFiles,
    identitiesonly: r.identitiesOnly ? 'yes' : 'no',
    identityagent: r.identityAgent,
    proxyjump: r.proxyJump,
    userknownhostsfile: r.userKnownHostsFiles.join(' '),
    stricthostkeychecking: strict,
    connecttimeout: r.connectTimeoutS === null ? 'none' : String(r.connectTimeoutS),
    serveraliveinterval: String(r.serverAliveIntervalS),
    serveralivecountmax: String(r.serverAliveCountMax),
  };
}

function theirs(file: string, host: string): Record<string, unknown> {
  const g = sshG(file, host);
  const one = (k: string): string | null => g.get(k)?.[0] ?? null;
  return {
    host: one('host'),
    hostname: one('hostname'),
    user: one('user'),
    port: one('port'),
    identityfile: g.get('identityfile') ?? [],
    identitiesonly: one('identitiesonly'),
    identityagent: one('identityagent'),
    proxyjump: one('proxyjump'),
    userknownhostsfile: one('userknownhostsfile'),
    stricthostkeychecking: one('stricthostkeychecking'),
    connecttimeout: one('connecttimeout'),
    serveraliveinterval: one('serveraliveinterval'),
    serveralivecountmax: one('serveralivecountmax'),
  };
}

interface Case {
  name: string;
  files: Record<string, string>;
  hosts: string[];
}

/** Tricky configs; `@DIR@` is replaced by the case's directory (OpenSSH reads relative Includes from ~/.ssh). */
const cases: Case[] = [
  {
    name: 'first value wins across blocks, Host * last',
    files: {
      config: ['Host web1', '  User first', '  Port 2201', 'Host web*', '  User second', '  Port 2202', '  ConnectTimeout 9', 'Host *', '  User last', '  ServerAliveInterval 30'].join('\n'),
    },
    hosts: ['web1', 'web2', 'other'],
  },
  {
    name: 'wildcards ? and *, negation vetoing a whole Host line, a line of only negations',
    files: {
      config: [
        'Host db? !db9',
        '  User dbuser',
        'Host *.internal !bastion.internal',
        '  ProxyJump bastion.internal',
        '  User internal',
        'Host !nothing',
        '  Port 9999',
        'Host *',
        '  IdentitiesOnly yes',
      ].join('\n'),
    },
    hosts: ['db1', 'db9', 'db10', 'app.internal', 'bastion.internal', 'nothing', 'else'],
  },
  {
    name: 'HostName with %h, lowercasing, case-sensitive Host patterns, an IP address',
    files: {
      config: ['Host Web1 web2', '  HostName %h.Example.COM', 'Host ip', '  HostName 10.0.0.7', 'Host pct', '  HostName a%%b'].join('\n'),
    },
    hosts: ['Web1', 'web1', 'WEB2', 'web2', 'ip', 'pct'],
  },
  {
    name: 'Match host (after HostName), originalhost, user, localuser, negated criteria, all',
    files: {
      config: [
        'Host short',
        '  HostName long.example.org',
        'Match host *.example.org',
        '  User byhost',
        'Match originalhost short !host nope.example.org',
        '  Port 2222',
        `Match localuser ${me.username}`,
        '  ConnectTimeout 4',
        'Match user byhost',
        '  ServerAliveCountMax 7',
        'Match !localuser nobody-at-all',
        '  IdentitiesOnly yes',
        'Match all',
        '  StrictHostKeyChecking accept-new',
      ].join('\n'),
    },
    hosts: ['short', 'long.example.org', 'other'],
  },
  {
    name: 'Include with a glob, an Include inside a Host block restores the block afterwards',
    files: {
      'conf.d/10-a.conf': ['Host inc1', '  User from-a', '  Port 1001'].join('\n'),
      'conf.d/20-b.conf': ['Host inc1 inc2', '  User from-b', '  HostName %h.b.test'].join('\n'),
      'scoped.conf': ['User scoped-user', 'Host never-named', '  Port 4444'].join('\n'),
      config: [
        'Include @DIR@/conf.d/*.conf',
        'Host scope',
        '  Include @DIR@/scoped.conf',
        '  ConnectTimeout 3',
        'Host *',
        '  Port 2020',
      ].join('\n'),
    },
    hosts: ['inc1', 'inc2', 'scope', 'never-named'],
  },
  {
    name: 'IdentityFile accumulates (tokens kept as written), UserKnownHostsFile and IdentityAgent expand tokens',
    files: {
      config: [
        'Host keys',
        '  HostName keys.example.net',
        '  User kuser',
        '  IdentityFile ~/.ssh/id_%h_%u',
        '  IdentityFile %d/keys/%r@%h:%p',
        '  UserKnownHostsFile ~/kh/%h_%p_%r %d/kh2_%n_%C_%l_%L_%i_%k',
        '  IdentityAgent ${HOME}/agent-%h.sock',
        'Host *',
        '  IdentityFile ~/.ssh/id_common',
        '  IdentityFile ~/.ssh/id_%h_%u',
        '  StrictHostKeyChecking yes',
      ].join('\n'),
    },
    hosts: ['keys', 'nokeys'],
  },
  {
    name: 'ProxyJump forms, ProxyJump none, and ProxyCommand first excluding a later ProxyJump',
    files: {
      config: [
        'Host direct',
        '  ProxyJump none',
        'Host viacmd',
        '  ProxyCommand nc %h %p',
        'Host *',
        '  ProxyJump ops@bastion:2222,ssh://jump2:23,[::1]:22',
      ].join('\n'),
    },
    hosts: ['direct', 'viacmd', 'anything'],
  },
  {
    name: 'Match final re-reads the file with the resolved host name',
    files: {
      config: ['Host alias1', '  HostName Real.Example.COM', 'Match final host real.example.com', '  User finaluser', 'Host real.example.com', '  Port 2022'].join('\n'),
    },
    hosts: ['alias1', 'real.example.com'],
  },
];

describe('resolution equals ssh -G', () => {
  it.each(cases)('$name', ({ files, hosts }) => {
    const dir = tempDir();
    for (const [name, text] of Object.entries(files)) {
      mkdirSync(join(dir, name, '..'), { recursive: true });
      writeFileSync(join(dir, name), text.replaceAll('@DIR@', dir));
    }
    const file = join(dir, 'config');
    for (const host of hosts) {
      expect({ host, ...ours(file, host) }).toEqual({ host, ...theirs(file, host) });
    }
  });
});

describe('ssh_config details', () => {
  it('a relative Include is read from ~/.ssh of the given home, globbed in sorted order', () => {
    const home = tempDir();
    mkdirSync(join(home, '.ssh', 'conf.d'), { recursive: true });
    writeFileSync(join(home, '.ssh', 'conf.d', 'b.conf'), 'Host x\n  User from-b\n');
    writeFileSync(join(home, '.ssh', 'conf.d', 'a.conf'), 'Host x\n  User from-a\n  Port 2\n');
    const ctx = { home, localUser: 'me' };
    const r = resolveSshConfig(parseSshConfig('Include conf.d/*\n', ctx), 'x', ctx);
    expect([r.user, r.port]).toEqual(['from-a', 2]);
  });

  it('an Include loop is refused, naming the depth limit', () => {
    const dir = tempDir();
    writeFileSync(join(dir, 'loop'), `Include ${join(dir, 'loop')}\n`);
    expect(() => readSshConfig(join(dir, 'loop'), { home: dir, localUser: 'me' })).toThrow(/nested more than 16/u);
  });

  it.each([
    ['Match exec "touch @MARKER@"'],
    ['Match !exec "touch @MARKER@"'],
    ['Match host h exec "touch @MARKER@"'],
    ['Match tagged prod'],
    ['Match !localnetwork 10.0.0.0/8'],
  ])('%s never applies: sshgate runs no command from the config and cannot judge newer criteria', (line) => {
    const dir = tempDir();
    const marker = join(dir, 'ran');
    const ctx = { home: dir, localUser: 'me' };
    const r = resolveSshConfig(parseSshConfig(`${line.replace('@MARKER@', marker)}\n  User viaexec\n`, ctx), 'h', ctx);
    expect(r.user).toBe('me');
    expect(existsSync(marker)).toBe(false);
  });

  it('an unknown % token and an unset ${VAR} are configuration errors', () => {
    const ctx = { home: '/h', localUser: 'me', env: {} };
    expect(() => resolveSshConfig(parseSshConfig('Host *\n  UserKnownHostsFile ~/%Q\n', ctx), 'h', ctx)).toThrow(SshgateError);
    expect(() => resolveSshConfig(parseSshConfig('Host *\n  IdentityAgent ${NOPE}/s\n', ctx), 'h', ctx)).toThrow(/NOPE is not set/u);
  });

  it.each([
    ['bastion', [{ spec: 'bastion', host: 'bastion', user: null, port: null }]],
    ['ops@b:2222,c', [{ spec: 'ops@b:2222', host: 'b', user: 'ops', port: 2222 }, { spec: 'c', host: 'c', user: null, port: null }]],
    ['ssh://u@h:23', [{ spec: 'ssh://u@h:23', host: 'h', user: 'u', port: 23 }]],
    ['[::1]:22', [{ spec: '[::1]:22', host: '::1', user: null, port: 22 }]],
  ])('parses ProxyJump %s', (value, hops) => {
    expect(parseProxyJump(value)).toEqual(hops);
  });

  it.each(['', 'a,,b', '@h', 'h:99999'])('refuses the ProxyJump value %j', (value) => {
    expect(() => parseProxyJump(value)).toThrow(SshgateError);
  });

  it.each([
    ['web1', 'web*,!web2', 1],
    ['web2', 'web*,!web2', -1],
    ['WEB1', 'web?', 1],
    ['x', '!x', -1],
    ['y', '!x', 0],
  ] as const)('matchPatternList(%s, %s) = %d (hostname matching ignores case)', (text, list, expected) => {
    expect(matchPatternList(text, list, true)).toBe(expected);
  });
});

describe('sshgate hosts and ~/.ssh/config', () => {
  function homeWith(sshConfig: string): string {
    const home = tempDir();
    mkdirSync(join(home, '.ssh'));
    writeFileSync(join(home, '.ssh', 'config'), sshConfig);
    writeFileSync(join(home, '.ssh', 'id_ed25519'), 'not read at load time');
    return home;
  }

  async function load(home: string, doc: unknown, env: Record<string, string> = {}): ReturnType<typeof loadConfig> {
    const path = join(home, 'sshgate.yaml');
    writeFileSync(path, stringify(doc));
    return loadConfig({ config: path }, { USER: 'local', ...env }, home);
  }

  const sshConfig = [
    'Host web1',
    '  HostName 10.1.1.1',
    '  User sshuser',
    '  Port 2222',
    '  IdentityFile ~/.ssh/id_web1',
    '  UserKnownHostsFile ~/.ssh/kh_web1 /dev/null',
    '  StrictHostKeyChecking yes',
    '  ConnectTimeout 5',
    '  ServerAliveInterval 2',
    '  ServerAliveCountMax 2',
    'Host *',
    '  User wildcard',
    '  Port 2999',
  ].join('\n');

  it('a host named in ~/.ssh/config is resolved through it; sshgate values win; timings only get stricter', async () => {
    const home = homeWith(sshConfig);
    const loaded = await load(home, {
      known_hosts: { mode: 'accept-new' },
      pool: { connect_timeout_ms: 20_000, keepalive_interval_ms: 15_000 },
      hosts: { web1: { port: 22 }, plain: { hostname: '10.2.2.2' } },
    });
    const web1 = loaded.hosts.get('web1');
    expect(web1).toMatchObject({
      hostname: '10.1.1.1',
      port: 22,
      user: 'sshuser',
      identityFiles: [],
      jump: null,
      knownHostsMode: 'strict',
      knownHostsFiles: [join(home, '.ssh', 'kh_web1')],
      connectTimeoutMs: 5000,
      keepaliveIntervalMs: 2000,
      keepaliveCountMax: 2,
    });
    // Host * applies only through a named host: "plain" is not in ~/.ssh/config, so nothing of it applies.
    expect(loaded.hosts.get('plain')).toMatchObject({ hostname: '10.2.2.2', user: 'local', port: 22, knownHostsMode: 'accept-new' });
  });

  it('StrictHostKeyChecking no and accept-new never loosen a strict sshgate', async () => {
    const home = homeWith('Host a\n  StrictHostKeyChecking no\nHost b\n  StrictHostKeyChecking accept-new\n');
    const loaded = await load(home, { hosts: { a: {}, b: {} } });
    expect([loaded.hosts.get('a')?.knownHostsMode, loaded.hosts.get('b')?.knownHostsMode]).toEqual(['strict', 'strict']);
  });

  it('ProxyJump becomes a chain of hops; a hop that is an sshgate alias is that host', async () => {
    const home = homeWith(['Host target', '  ProxyJump bastion,ops@inner:2200', 'Host inner', '  HostName 10.9.9.9', '  User innerdefault'].join('\n'));
    const loaded = await load(home, { hosts: { target: {}, bastion: { hostname: '10.0.0.1' } } });
    const target = loaded.hosts.get('target');
    const inner = target?.jumpHost;
    expect(inner).toMatchObject({ alias: 'bastion,ops@inner:2200', hostname: '10.9.9.9', user: 'ops', port: 2200 });
    expect(inner?.jumpHost).toBe(loaded.hosts.get('bastion'));
    expect(target?.jump).toBe('bastion,ops@inner:2200');
  });

  it('an sshgate jump wins over ProxyJump', async () => {
    const home = homeWith('Host target\n  ProxyJump elsewhere\n');
    const loaded = await load(home, { hosts: { target: { jump: 'bastion' }, bastion: {} } });
    expect(loaded.hosts.get('target')?.jumpHost).toBe(loaded.hosts.get('bastion'));
  });

  it('a ProxyJump cycle is refused with the chain', async () => {
    const home = homeWith('Host target\n  ProxyJump b1\nHost b1\n  ProxyJump b2\nHost b2\n  ProxyJump b1\n');
    await expect(load(home, { hosts: { target: {} } })).rejects.toThrow(/target -> b1 -> b2 -> b1/u);
  });

  it('without an sshgate file, the named hosts are imported with identity files that exist and the agent', async () => {
    const home = homeWith('Host box\n  HostName 10.3.3.3\nHost other\n  IdentitiesOnly yes\n  IdentityFile ~/.ssh/missing\n');
    const loaded = await loadConfig({}, { USER: 'local', SSH_AUTH_SOCK: '/run/agent.sock', XDG_CONFIG_HOME: join(home, 'xdg') }, home);
    expect(loaded.source.kind).toBe('ssh_config');
    expect(loaded.hosts.get('box')).toMatchObject({ hostname: '10.3.3.3', user: 'local', identityFiles: [join(home, '.ssh', 'id_ed25519')], agent: '/run/agent.sock' });
    // IdentitiesOnly: no agent; a missing IdentityFile is skipped as ssh does.
    expect(loaded.hosts.get('other')).toMatchObject({ identityFiles: [], agent: null });
  });
});

describe('sshgate jump', () => {
  async function loadDoc(doc: unknown): ReturnType<typeof loadConfig> {
    const home = tempDir();
    const path = join(home, 'c.yaml');
    writeFileSync(path, stringify(doc));
    return loadConfig({ config: path }, {}, home);
  }

  it('links each host to its jump host, chains included', async () => {
    const loaded = await loadDoc({ hosts: { a: {}, b: { jump: 'a' }, c: { jump: 'b' } } });
    expect(loaded.hosts.get('c')?.jumpHost?.jumpHost).toBe(loaded.hosts.get('a'));
    expect(loaded.hosts.get('a')?.jumpHost).toBeNull();
  });

  it.each([
    [{ a: { jump: 'a' } }, 'a -> a'],
    [{ a: { jump: 'b' }, b: { jump: 'c' }, c: { jump: 'a' } }, 'a -> b -> c -> a'],
  ])('refuses a cycle, naming the chain (%#)', async (hosts, chain) => {
    await expect(loadDoc({ hosts })).rejects.toThrow(chain);
  });

  it('refuses a jump to an alias that is not configured', async () => {
    await expect(loadDoc({ hosts: { a: { jump: 'ghost' } } })).rejects.toThrow(/hosts\.a\.jump: ghost is not a configured host/u);
  });

  it('a jump in defaults does not apply to the jump host itself', async () => {
    const loaded = await loadDoc({ defaults: { jump: 'bastion' }, hosts: { bastion: {}, web: {} } });
    expect(loaded.hosts.get('bastion')?.jumpHost).toBeNull();
    expect(loaded.hosts.get('web')?.jumpHost).toBe(loaded.hosts.get('bastion'));
  });
});
