// Config loading: validation messages name the key path; the environment can lower the tier, never raise it.
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { configuredSecrets, expandHome, hostsFromSshConfig, interpolateEnv, loadConfig, parseConfig } from '../../../src/config/load.js';
import { SshgateError } from '../../../src/errors.js';

function home(): string {
  return mkdtempSync(join(tmpdir(), 'sshgate-home-'));
}

function configFile(doc: unknown): string {
  const dir = home();
  const path = join(dir, 'config.yaml');
  writeFileSync(path, typeof doc === 'string' ? doc : stringify(doc));
  return path;
}

async function loadError(doc: unknown, env: Record<string, string> = {}): Promise<SshgateError> {
  try {
    await loadConfig({ config: configFile(doc) }, env, home());
  } catch (err) {
    if (err instanceof SshgateError) return err;
    throw err;
  }
  throw new Error('expected the config to be refused');
}

describe('validation names the key path', () => {
  it.each([
    ['an unknown top-level key', { tier: 'read', tierr: 'exec' }, 'tierr: unknown key'],
    ['an unknown host key (typo)', { hosts: { web1: { prot: 22 } } }, 'hosts.web1.prot: unknown key'],
    ['a wrong type', { hosts: { web1: { port: 'twenty-two' } } }, 'hosts.web1.port'],
    ['a port out of range', { hosts: { web1: { port: 70000 } } }, 'hosts.web1.port'],
    ['an unknown tier', { tier: 'root' }, 'tier'],
    ['an invalid known_hosts mode (no "off")', { known_hosts: { mode: 'off' } }, 'known_hosts.mode'],
    ['an invalid command regex', { hosts: { web1: { commands: { allow: ['(unclosed'] } } } }, 'hosts.web1.commands.allow.0: not a valid regular expression'],
    ['a relative root', { hosts: { web1: { roots: ['var/www'] } } }, 'hosts.web1.roots.0'],
    ['an env name that is not a name', { hosts: { web1: { password_env: 'MY-PASS' } } }, 'hosts.web1.password_env'],
  ])('refuses %s', async (_name, doc, expected) => {
    const err = await loadError(doc);
    expect(err.code).toBe('CONFIG_INVALID');
    expect(err.message).toContain(expected);
  });

  it('reports invalid YAML with the file name', async () => {
    const err = await loadError('tier: [read\n');
    expect(err.message).toMatch(/not valid YAML/u);
  });

  it('refuses an explicit config path that does not exist', async () => {
    await expect(loadConfig({ config: '/nonexistent/sshgate.yaml' }, {}, home())).rejects.toThrow(/does not exist/u);
  });
});

describe('environment interpolation', () => {
  it('replaces ${VAR} and $VAR, keeps $$ as a literal $ and a trailing $ as it is', () => {
    expect(interpolateEnv({ a: '${X}-$Y', b: ['cost $$5', '^ls$'] }, { X: '1', Y: '2' })).toEqual({ a: '1-2', b: ['cost $5', '^ls$'] });
  });

  it('a missing variable names the variable and the key path', () => {
    expect(() => interpolateEnv({ hosts: { web1: { hostname: '${NOPE}' } } }, {})).toThrow('hosts.web1.hostname: environment variable NOPE is not set');
  });

  it('a passphrase_env naming an unset variable stops start-up', async () => {
    const err = await loadError({ hosts: { web1: { identity_file: '/k', passphrase_env: 'UNSET_PASSPHRASE' } } });
    expect(err.message).toContain('hosts.web1.passphrase_env: environment variable UNSET_PASSPHRASE is not set');
  });

  it('agent: true without SSH_AUTH_SOCK stops start-up', async () => {
    const err = await loadError({ hosts: { web1: { agent: true } } });
    expect(err.message).toContain('SSH_AUTH_SOCK');
  });
});

describe('tiers', () => {
  it.each([
    ['exec', 'read', 'read'],
    ['read', 'exec', 'read'],
    ['write', 'write', 'write'],
  ])('file tier %s with SSHGATE_TIER=%s gives %s (lower only)', async (file, env, expected) => {
    const loaded = await loadConfig({ config: configFile({ tier: file }) }, { SSHGATE_TIER: env }, home());
    expect(loaded.config.tier).toBe(expected);
  });

  it('--tier lowers too, and a bad value is refused', async () => {
    const path = configFile({ tier: 'exec' });
    expect((await loadConfig({ config: path, tier: 'write' }, {}, home())).config.tier).toBe('write');
    await expect(loadConfig({ config: path }, { SSHGATE_TIER: 'god' }, home())).rejects.toThrow(/SSHGATE_TIER: must be one of/u);
  });

  it('the effective host tier is the lower of global and host', async () => {
    const loaded = await loadConfig({ config: configFile({ tier: 'write', hosts: { a: { tier: 'exec' }, b: { tier: 'read' }, c: {} } }) }, {}, home());
    expect([...loaded.hosts.values()].map((h) => h.tier)).toEqual(['write', 'read', 'write']);
  });
});

describe('hosts', () => {
  it('applies defaults, expands ~ and defaults hostname to the alias and port to 22', async () => {
    const h = home();
    const loaded = await loadConfig(
      { config: configFile({ defaults: { user: 'deploy', identity_file: '~/.ssh/id_ed25519', labels: ['all'] }, hosts: { web1: { user: 'admin' }, web2: {} } }) },
      {},
      h,
    );
    const web1 = loaded.hosts.get('web1');
    expect(web1).toMatchObject({ hostname: 'web1', port: 22, user: 'admin', identityFiles: [join(h, '.ssh/id_ed25519')], labels: ['all'] });
    expect(loaded.hosts.get('web2')?.user).toBe('deploy');
  });

  it('collects the configured secret values for redaction, never the variable names', async () => {
    const loaded = await loadConfig({ config: configFile({ hosts: { web1: { password_env: 'PW' } } }) }, { PW: 'hunter2-secret' }, home());
    expect(configuredSecrets(loaded, { PW: 'hunter2-secret' })).toEqual(['hunter2-secret']);
  });

  it('the loaded config is frozen', async () => {
    const loaded = await loadConfig({ config: configFile({ tier: 'read' }) }, {}, home());
    expect(() => {
      (loaded.config as { tier: string }).tier = 'sudo';
    }).toThrow();
  });
});

describe('without a config file: ~/.ssh/config', () => {
  const sshConfig = [
    'Host *',
    '  ServerAliveInterval 30',
    'Host web1 web2',
    '  HostName %h.example.com',
    '  User deploy',
    '  Port 2222',
    '  IdentityFile ~/.ssh/id_web',
    'Host *.internal !bastion db?',
    '  User ops',
    'Host bastion',
    '  HostName 10.0.0.1',
  ].join('\n');

  it('imports the concrete Host entries, not wildcards or negations', () => {
    const hosts = hostsFromSshConfig(sshConfig);
    expect(Object.keys(hosts)).toEqual(['web1', 'web2', 'bastion']);
    expect(hosts['web1']).toEqual({ hostname: 'web1.example.com', user: 'deploy', port: 2222, identity_file: ['~/.ssh/id_web'] });
    expect(hosts['bastion']).toEqual({ hostname: '10.0.0.1' });
  });

  it('offers them at tier read when there is no sshgate config', async () => {
    const h = home();
    mkdirSync(join(h, '.ssh'));
    writeFileSync(join(h, '.ssh', 'config'), sshConfig);
    const loaded = await loadConfig({}, { XDG_CONFIG_HOME: join(h, 'xdg') }, h);
    expect(loaded.source.kind).toBe('ssh_config');
    expect([...loaded.hosts.keys()]).toEqual(['web1', 'web2', 'bastion']);
    expect(loaded.config.tier).toBe('read');
  });

  it('finds the XDG config file by default', async () => {
    const h = home();
    mkdirSync(join(h, 'xdg', 'sshgate'), { recursive: true });
    writeFileSync(join(h, 'xdg', 'sshgate', 'config.yaml'), stringify({ tier: 'write' }));
    const loaded = await loadConfig({}, { XDG_CONFIG_HOME: join(h, 'xdg') }, h);
    expect(loaded.source.kind).toBe('file');
    expect(loaded.config.tier).toBe('write');
  });
});

describe('helpers', () => {
  it('expandHome expands ~ and ~/ only', () => {
    expect(expandHome('~', '/h')).toBe('/h');
    expect(expandHome('~/x', '/h')).toBe('/h/x');
    expect(expandHome('~user/x', '/h')).toBe('~user/x');
  });

  it('parseConfig fills the defaults', () => {
    const c = parseConfig({});
    expect(c.tier).toBe('read');
    expect(c.known_hosts).toEqual({ file: '~/.ssh/known_hosts', mode: 'strict' });
    expect(c.pool.max_channels_per_connection).toBeLessThan(10);
  });
});

describe('command rules', () => {
  it('refuses an allow_constructs name that does not exist, naming it', async () => {
    const err = await loadError({ hosts: { web1: { commands: { allow_constructs: ['everything'] } } } });
    expect(err.message).toContain('hosts.web1.commands.allow_constructs.0');
  });
});
