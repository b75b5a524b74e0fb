// Path confinement as a threat model: each case is named after the attack or behaviour it pins down.
import { describe, expect, it } from 'vitest';

import { SshgateError } from '../../../src/errors.js';
import {
  assertLocalPath,
  assertRemotePath,
  checkLocalPath,
  checkRemotePath,
  isUnder,
  type PathRules,
} from '../../../src/policy/path-policy.js';

const APP: PathRules = { roots: ['/srv/app'] };
const WEB: PathRules = { roots: ['/var/www', '/var/log'], restricted_paths: ['/var/www/.env', '/var/www/secrets/'] };
const LONG_SEGMENT = 'a'.repeat(255);
const LONG_PATH = `/srv/app/${Array.from({ length: 40 }, () => LONG_SEGMENT).join('/')}`;

describe('checkRemotePath', () => {
  it.each<[string, string, PathRules, string]>([
    ['a plain path under the root', '/srv/app/index.html', APP, '/srv/app/index.html'],
    ['the root itself', '/srv/app', APP, '/srv/app'],
    ['the root with a trailing slash', '/srv/app/', APP, '/srv/app'],
    ['a root configured with a trailing slash', '/srv/app/x', { roots: ['/srv/app/'] }, '/srv/app/x'],
    ['a root configured un-normalised (/srv//app/./)', '/srv/app/x', { roots: ['/srv//app/./'] }, '/srv/app/x'],
    ['//srv/app (a double slash normalises)', '//srv/app/x', APP, '/srv/app/x'],
    ['///srv//app///x/ (runs of slashes)', '///srv//app///x/', APP, '/srv/app/x'],
    ['/srv/app/./x (dot segments drop)', '/srv/app/./x/.', APP, '/srv/app/x'],
    ['/srv/app/x/../y (.. that stays inside the root)', '/srv/app/x/../y', APP, '/srv/app/y'],
    ['/srv/app/... (three dots are a name, not a climb)', '/srv/app/...', APP, '/srv/app/...'],
    ['/srv/app/..x (a name starting with ..)', '/srv/app/..x', APP, '/srv/app/..x'],
    ['a backslash, which is not a separator on POSIX', '/srv/app/..\\..\\etc', APP, '/srv/app/..\\..\\etc'],
    ['root / allows all', '/etc/shadow', { roots: ['/'] }, '/etc/shadow'],
    ['no roots allows the whole file system', '/etc/passwd', {}, '/etc/passwd'],
    ['an empty roots list allows the whole file system', '/etc/passwd', { roots: [] }, '/etc/passwd'],
    ['/ itself with no roots', '/', {}, '/'],
    ['/.. climbs no higher than / (POSIX)', '/../../..', {}, '/'],
    ['a second root', '/var/log/syslog', WEB, '/var/log/syslog'],
    ['/var/www/.envrc next to the restricted /var/www/.env', '/var/www/.envrc', WEB, '/var/www/.envrc'],
    ['/var/www/.env.example next to the restricted /var/www/.env', '/var/www/.env.example', WEB, '/var/www/.env.example'],
    ['a very long path under the root (PATH_MAX is the remote side\'s business)', LONG_PATH, APP, LONG_PATH],
    ['unicode names under the root', '/srv/app/café/日本語.txt', APP, '/srv/app/café/日本語.txt'],
    ['a space and shell metacharacters are just characters', '/srv/app/a b;$(rm -rf)`x`', APP, '/srv/app/a b;$(rm -rf)`x`'],
  ])('allows %s', (_name, path, rules, expected) => {
    expect(checkRemotePath(path, rules)).toEqual({ allowed: true, path: expected });
  });

  it.each<[string, string, PathRules, string]>([
    ['/srv/app2 when the root is /srv/app', '/srv/app2', APP, 'roots'],
    ['/srv/app-evil/x when the root is /srv/app', '/srv/app-evil/x', APP, 'roots'],
    ['/srv (the parent of the root)', '/srv', APP, 'roots'],
    ['/ when the root is /srv/app', '/', APP, 'roots'],
    ['/srv/app/../etc/passwd', '/srv/app/../etc/passwd', APP, 'roots'],
    ['/srv/app/./../../etc', '/srv/app/./../../etc', APP, 'roots'],
    ['/srv/app/.. (climbing to the parent)', '/srv/app/..', APP, 'roots'],
    ['/srv/app/x/../../app2 (a climb into a sibling sharing the prefix)', '/srv/app/x/../../app2', APP, 'roots'],
    ['/../srv/app/../../etc (a climb above / and back)', '/../srv/app/../../etc', APP, 'roots'],
    ['a Cyrillic а lookalike of /srv/app (a different path)', '/srv/\u0430pp/x', APP, 'roots'],
    ['a fullwidth solidus lookalike of / (a different path)', '/srv\uff0fapp/x', APP, 'roots'],
    ['a decomposed é when the root uses the composed one', '/srv/cafe\u0301/x', { roots: ['/srv/caf\u00e9'] }, 'roots'],
    ['a very long path outside the root', `/srv/other/${LONG_SEGMENT}`, APP, 'roots'],
    ['a path when the only root is relative (fail closed)', '/srv/app/x', { roots: ['srv/app'] }, 'roots'],
    ['relative path foo/bar', 'foo/bar', APP, 'absolute_path'],
    ['relative path ../etc/passwd', '../etc/passwd', {}, 'absolute_path'],
    ['a path starting with ~', '~/.ssh/id_ed25519', {}, 'absolute_path'],
    ['a dot path', '.', {}, 'absolute_path'],
    ['the empty path', '', {}, 'empty'],
    ['NUL byte /srv/app/x\\0/../../etc', '/srv/app/x\0/../../etc', APP, 'nul_byte'],
    ['a trailing NUL byte', '/srv/app/x\0', APP, 'nul_byte'],
    ['newline in path', '/srv/app/x\ny', APP, 'control_character'],
    ['carriage return in path', '/srv/app/x\r', APP, 'control_character'],
    ['tab in path', '/srv/app/\tx', APP, 'control_character'],
    ['an ANSI escape sequence', '/srv/app/\u001b[2Jx', APP, 'control_character'],
    ['DEL in path', '/srv/app/x\u007f', APP, 'control_character'],
    ['a C1 control (8-bit CSI)', '/srv/app/x\u009b31m', APP, 'control_character'],
    ['a control character in a relative path (checked first)', 'x\ny', APP, 'control_character'],
    ['restricted carve-out /var/www/.env', '/var/www/.env', WEB, 'restricted_paths[0]'],
    ['restricted carve-out /var/www/.env/x', '/var/www/.env/x', WEB, 'restricted_paths[0]'],
    ['the carve-out reached through a climb /var/www/x/../.env', '/var/www/x/../.env', WEB, 'restricted_paths[0]'],
    ['the carve-out with a trailing slash /var/www/.env/', '/var/www/.env/', WEB, 'restricted_paths[0]'],
    ['the carve-out through a double slash //var/www//.env', '//var/www//.env', WEB, 'restricted_paths[0]'],
    ['a carve-out configured with a trailing slash', '/var/www/secrets/key.pem', WEB, 'restricted_paths[1]'],
    ['a carve-out without roots', '/etc/shadow', { restricted_paths: ['/etc/shadow'] }, 'restricted_paths[0]'],
    ['a carve-out of / (everything restricted)', '/tmp/x', { restricted_paths: ['/'] }, 'restricted_paths[0]'],
  ])('refuses %s', (_name, path, rules, rule) => {
    const decision = checkRemotePath(path, rules);
    expect(decision.allowed).toBe(false);
    expect(decision).toMatchObject({ rule });
  });

  it('reports the normalised path of a refusal after normalisation, and the raw path before it', () => {
    expect(checkRemotePath('/srv/app/../etc/', APP)).toMatchObject({ path: '/srv/etc' });
    expect(checkRemotePath('foo/../bar', APP)).toMatchObject({ path: 'foo/../bar' });
  });

  it('names the path, the normalised roots, the host and the config key when the roots refuse', () => {
    const decision = checkRemotePath('/etc/shadow', { roots: ['/var/www/', '/var/log'] }, { host: 'web1' });
    expect(decision).toMatchObject({
      allowed: false,
      rule: 'roots',
      message:
        '/etc/shadow is outside the allowed roots [/var/www, /var/log] of host web1 (config key hosts.web1.roots); ' +
        'use a path under one of them.',
    });
  });

  it('names the plain config key when no host is given', () => {
    const decision = checkRemotePath('/etc/shadow', APP);
    expect(decision).toMatchObject({
      message: '/etc/shadow is outside the allowed roots [/srv/app] (config key roots); use a path under one of them.',
    });
  });

  it('names the carve-out and its index when a restricted path refuses', () => {
    expect(checkRemotePath('/var/www/secrets/a', WEB, { host: 'web1' })).toMatchObject({
      message:
        '/var/www/secrets/a is inside the restricted path /var/www/secrets of host web1 ' +
        '(config key hosts.web1.restricted_paths[1]); it may not be used, nor anything below it.',
    });
    expect(checkRemotePath('/var/www/.env', WEB)).toMatchObject({
      message: expect.stringContaining('(config key restricted_paths[0])') as unknown,
    });
  });

  it('escapes control characters in messages so none reaches a terminal or log raw', () => {
    const decision = checkRemotePath('/srv/app/\u001b[2J\nx', APP);
    expect(decision).toMatchObject({ rule: 'control_character' });
    expect(decision.allowed ? '' : decision.message).toContain('/srv/app/\\u001b[2J\\nx');
    expect(decision.allowed ? '' : decision.message).not.toMatch(/\p{Cc}/u);
    const nul = checkRemotePath('/a\0b', {});
    expect(nul.allowed ? '' : nul.message).toContain('/a\\u0000b');
    expect(nul.allowed ? '' : nul.message).not.toContain('\0');
  });

  it('cuts a very long path in the message but keeps it whole in the decision', () => {
    const path = `/other/${'x'.repeat(10_000)}`;
    const decision = checkRemotePath(path, APP);
    expect(decision).toMatchObject({ allowed: false, path });
    expect(decision.allowed ? '' : decision.message.length).toBeLessThan(400);
    expect(decision.allowed ? '' : decision.message).toContain('…');
  });

  it('is not fooled by rules that are frozen arrays', () => {
    const rules: PathRules = Object.freeze({ roots: Object.freeze(['/srv/app']), restricted_paths: Object.freeze(['/srv/app/.git']) });
    expect(checkRemotePath('/srv/app/.git/config', rules)).toMatchObject({ rule: 'restricted_paths[0]' });
  });
});

describe('isUnder', () => {
  it.each<[string, string, string, boolean]>([
    ['a path equal to the root', '/srv/app', '/srv/app', true],
    ['a child', '/srv/app/x', '/srv/app', true],
    ['a deep child', '/srv/app/x/y/z', '/srv/app', true],
    ['/srv/app2 when the root is /srv/app', '/srv/app2', '/srv/app', false],
    ['/srv/app-evil when the root is /srv/app', '/srv/app-evil', '/srv/app', false],
    ['the parent of the root', '/srv', '/srv/app', false],
    ['anything absolute under /', '/etc', '/', true],
    ['/ under /', '/', '/', true],
    ['a root with a trailing slash', '/srv/app/x', '/srv/app/', true],
    ['a path with a trailing slash', '/srv/app/', '/srv/app', true],
    ['a climb out of the root', '/srv/app/../etc', '/srv/app', false],
    ['a double slash', '//srv/app', '/srv/app', true],
    ['a relative path under /', 'etc', '/', false],
    ['a relative path that looks like the root', 'srv/app/x', 'srv/app', false],
    ['an absolute path under a relative root', '/srv/app/x', 'srv/app', false],
  ])('%s', (_name, path, root, expected) => {
    expect(isUnder(path, root)).toBe(expected);
  });
});

describe('assertRemotePath', () => {
  it('returns the normalised path when allowed', () => {
    expect(assertRemotePath('/srv/app/./x/', APP)).toBe('/srv/app/x');
  });

  it('throws PATH_DENIED with the rule, the roots and the host', () => {
    let caught: unknown;
    try {
      assertRemotePath('/etc/shadow', WEB, { host: 'web1' });
    } catch (err) {
      caught = err;
    }
    expect(caught).toBeInstanceOf(SshgateError);
    expect(caught).toMatchObject({
      code: 'PATH_DENIED',
      category: 'policy',
      retryable: false,
      message: expect.stringContaining('outside the allowed roots [/var/www, /var/log] of host web1') as unknown,
      details: { rule: 'roots', path: '/etc/shadow' },
    });
  });

  it('escapes the path in the details of a control character refusal', () => {
    expect(() => assertRemotePath('/srv/app/x\n', APP)).toThrow(
      expect.objectContaining({ code: 'PATH_DENIED', details: { rule: 'control_character', path: '/srv/app/x\\n' } }),
    );
  });
});

describe('checkLocalPath', () => {
  const HOME = '/home/op';
  const LOCAL = ['~/deploy', '/srv/releases/'];

  it.each<[string, string, readonly string[], string, string]>([
    ['~/ expanded under a ~ local path', '~/deploy/app.tar', LOCAL, HOME, '/home/op/deploy/app.tar'],
    ['an absolute path under a ~ local path', '/home/op/deploy/x', LOCAL, HOME, '/home/op/deploy/x'],
    ['a local path configured with a trailing slash', '/srv/releases/v1', LOCAL, HOME, '/srv/releases/v1'],
    ['the local path itself', '~/deploy/', LOCAL, HOME, '/home/op/deploy'],
    ['a bare ~ when home itself is allowed', '~', ['~'], HOME, '/home/op'],
    ['a home with a trailing slash', '~/deploy/x', LOCAL, '/home/op/', '/home/op/deploy/x'],
    ['a climb that stays inside', '~/deploy/a/../b', LOCAL, HOME, '/home/op/deploy/b'],
  ])('allows %s', (_name, path, localPaths, home, expected) => {
    expect(checkLocalPath(path, localPaths, home)).toEqual({ allowed: true, path: expected });
  });

  it.each<[string, string, readonly string[], string, string]>([
    ['anything when local_paths is empty', '~/deploy/x', [], HOME, 'local_paths'],
    ['~/.ssh/id_ed25519 (outside the local paths)', '~/.ssh/id_ed25519', LOCAL, HOME, 'local_paths'],
    ['~/deploy/../.ssh/id_ed25519 (a climb out)', '~/deploy/../.ssh/id_ed25519', LOCAL, HOME, 'local_paths'],
    ['~/deploy2 when the local path is ~/deploy', '~/deploy2/x', LOCAL, HOME, 'local_paths'],
    ['a bare ~ (home is not a local path)', '~', LOCAL, HOME, 'local_paths'],
    ['/etc/passwd', '/etc/passwd', LOCAL, HOME, 'local_paths'],
    ['~user/x (another user\'s home is not expanded)', '~op/deploy/x', LOCAL, HOME, 'absolute_path'],
    ['relative path deploy/x', 'deploy/x', LOCAL, HOME, 'absolute_path'],
    ['~/x when home is unset (must not become /x)', '~/x', ['/'], '', 'absolute_path'],
    ['~/x when home is relative', '~/x', ['/'], 'home/op', 'absolute_path'],
    ['the empty path', '', LOCAL, HOME, 'empty'],
    ['NUL byte ~/deploy/x\\0/../../.ssh', '~/deploy/x\0/../../.ssh', LOCAL, HOME, 'nul_byte'],
    ['newline in path', '~/deploy/x\n', LOCAL, HOME, 'control_character'],
  ])('refuses %s', (_name, path, localPaths, home, rule) => {
    const decision = checkLocalPath(path, localPaths, home);
    expect(decision.allowed).toBe(false);
    expect(decision).toMatchObject({ rule });
  });

  it('tells the operator to set local_paths when the list is empty', () => {
    expect(checkLocalPath('/tmp/x', [], HOME)).toMatchObject({
      message: expect.stringContaining('`local_paths`') as unknown,
    });
  });

  it('names the expanded, normalised local paths when the path is outside them', () => {
    expect(checkLocalPath('/etc/passwd', LOCAL, HOME)).toMatchObject({
      path: '/etc/passwd',
      message:
        'The local path /etc/passwd is outside the allowed local directories [/home/op/deploy, /srv/releases] ' +
        '(config key local_paths); use a path under one of them.',
    });
  });

  it('assertLocalPath returns the normalised path or throws PATH_DENIED', () => {
    expect(assertLocalPath('~/deploy/./x', LOCAL, HOME)).toBe('/home/op/deploy/x');
    expect(() => assertLocalPath('~/.aws/credentials', LOCAL, HOME)).toThrow(
      expect.objectContaining({ code: 'PATH_DENIED', details: { rule: 'local_paths', path: '/home/op/.aws/credentials' } }),
    );
  });
});
