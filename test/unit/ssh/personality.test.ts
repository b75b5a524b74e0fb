// The path personalities: POSIX passes through; Windows canonicalises and refuses the aliases Windows accepts.
import { describe, expect, it } from 'vitest';
import {
  foldWindowsCase,
  normaliseWindowsPath,
  personalityOf,
  powerShellCommand,
  powerShellHashScript,
  quotePowerShell,
} from '../../../src/ssh/personality.js';
import { policyPath } from '../../../src/tools/file-ops.js';

const windows = personalityOf({ platform: 'windows' });
const posix = personalityOf({ platform: 'posix' });

describe('normaliseWindowsPath', () => {
  it.each([
    ['C:\\Users\\deploy\\app.ini', '/C:/Users/deploy/app.ini'],
    ['C:/Users/deploy/app.ini', '/C:/Users/deploy/app.ini'],
    ['/C:/Users/deploy/app.ini', '/C:/Users/deploy/app.ini'],
    ['/c:/Users/deploy/', '/C:/Users/deploy'],
    ['c:\\Users\\.\\deploy\\\\x', '/C:/Users/deploy/x'],
    ['/C:\\Users/deploy\\x', '/C:/Users/deploy/x'],
    ['C:', '/C:/'],
    ['C:\\', '/C:/'],
    ['/d:/', '/D:/'],
    ['C:\\Users\\deploy\\..\\admin', '/C:/Users/admin'],
    ['C:\\..\\..\\Windows', '/C:/Windows'],
    ['C:/ünïcode/naïve café.txt', '/C:/ünïcode/naïve café.txt'],
  ])('canonicalises %j to %j', (input, expected) => {
    expect(normaliseWindowsPath(input)).toEqual({ ok: true, path: expected });
  });

  it.each([
    ['', 'empty'],
    ['C:\\x\0.txt', 'nul_byte'],
    ['C:\\x\n.txt', 'control_character'],
    ['\\\\server\\share\\x', 'windows_unc'],
    ['\\\\?\\C:\\Windows', 'windows_unc'],
    ['\\\\.\\PhysicalDrive0', 'windows_unc'],
    ['//server/share', 'windows_unc'],
    ['/Users/deploy', 'windows_drive'],
    ['Users\\deploy', 'windows_drive'],
    ['C:Users\\deploy', 'windows_drive'],
    ['1:\\x', 'windows_drive'],
  ])('refuses %j (rule %s)', (input, rule) => {
    const result = normaliseWindowsPath(input);
    expect(result.ok).toBe(false);
    if (!result.ok) expect(result.rule).toBe(rule);
  });

  it.each([
    ['an alternate data stream reaches the file itself', 'C:\\app\\secret.txt::$DATA', 'windows_name'],
    ['a named stream', 'C:\\app\\secret.txt:hidden', 'windows_name'],
    ['a wildcard', 'C:\\app\\*.txt', 'windows_name'],
    ['a trailing dot is stripped by Windows', 'C:\\app\\secret.txt.', 'windows_trailing_dot_or_space'],
    ['a trailing space is stripped by Windows', 'C:\\app\\secret.txt ', 'windows_trailing_dot_or_space'],
    ['a trailing dot on a directory', 'C:\\app.\\secret.txt', 'windows_trailing_dot_or_space'],
    ['a device name', 'C:\\app\\NUL', 'windows_device'],
    ['a device name with an extension', 'C:\\app\\com1.txt', 'windows_device'],
    ['a console device', 'C:\\app\\CONIN$', 'windows_device'],
    ['an 8.3 short name', 'C:\\PROGRA~1\\app', 'windows_short_name'],
    ['a short file name', 'C:\\app\\SECRET~1.TXT', 'windows_short_name'],
  ])('refuses %s', (_what, input, rule) => {
    const result = normaliseWindowsPath(input);
    expect(result.ok).toBe(false);
    if (!result.ok) expect(result.rule).toBe(rule);
  });
});

describe('windows personality: roots and restricted paths', () => {
  const rules = { roots: ['/C:/Users/deploy', 'D:\\data'], restricted_paths: ['/C:/Users/deploy/.ssh', 'C:\\Users\\deploy\\app\\.env'] };

  it.each([
    ['/C:/Users/deploy/app/config.ini', '/C:/Users/deploy/app/config.ini'],
    ['c:\\users\\DEPLOY\\app\\config.ini', '/C:/users/DEPLOY/app/config.ini'],
    ['D:/data', '/D:/data'],
    ['d:\\DATA\\x', '/D:/DATA/x'],
  ])('allows %j inside a root, compared without regard to case', (input, normalised) => {
    expect(windows.check(input, rules)).toEqual({ allowed: true, path: normalised });
  });

  it.each([
    ['a sibling with the root as prefix', 'C:\\Users\\deploy2\\x', 'roots'],
    ['climbing out with ..', 'C:\\Users\\deploy\\..\\admin\\x', 'roots'],
    ['another drive', 'E:\\data', 'roots'],
    ['the drive root', 'C:\\', 'roots'],
    ['a restricted directory in another case', 'C:\\USERS\\Deploy\\.SSH\\id_ed25519', 'restricted_paths[0]'],
    ['a restricted file with forward slashes', 'c:/users/deploy/app/.ENV', 'restricted_paths[1]'],
    ['a restricted file through ..', 'C:\\Users\\deploy\\x\\..\\app\\.env', 'restricted_paths[1]'],
    ['a restricted file through its stream', 'C:\\Users\\deploy\\app\\.env::$DATA', 'windows_name'],
    ['a restricted file with a trailing dot', 'C:\\Users\\deploy\\app\\.env.', 'windows_trailing_dot_or_space'],
    ['a UNC path to the same machine', '\\\\localhost\\C$\\Users\\deploy\\app\\.env', 'windows_unc'],
  ])('refuses %s', (_what, input, rule) => {
    const decision = windows.check(input, rules, { host: 'win1' });
    expect(decision.allowed).toBe(false);
    if (!decision.allowed) expect(decision.rule).toBe(rule);
  });

  it('names the config key in a refusal', () => {
    const decision = windows.check('C:\\Windows\\System32', rules, { host: 'win1' });
    expect(decision.allowed).toBe(false);
    if (!decision.allowed) expect(decision.message).toContain('hosts.win1.roots');
  });

  it('a restricted path that is not a valid Windows path refuses everything (fails closed)', () => {
    const decision = windows.check('C:\\Users\\deploy\\x', { roots: ['/C:/Users/deploy'], restricted_paths: ['relative\\secret'] });
    expect(decision.allowed).toBe(false);
  });

  it('a root that is not a valid Windows path matches nothing', () => {
    expect(windows.check('C:\\Users\\deploy\\x', { roots: ['relative'] }).allowed).toBe(false);
  });

  it('allows everything on a drive when there are no roots', () => {
    expect(windows.check('C:\\Windows\\win.ini', {})).toEqual({ allowed: true, path: '/C:/Windows/win.ini' });
  });
});

describe('foldWindowsCase', () => {
  it('upper-cases code point by code point', () => {
    expect(foldWindowsCase('/c:/Users/Déploy')).toBe('/C:/USERS/DÉPLOY');
  });

  it('keeps a character whose upper case is longer (ß must not equal SS)', () => {
    expect(foldWindowsCase('straße')).toBe('STRAßE');
    expect(windows.isWithin('/C:/STRASSE/x', '/C:/straße')).toBe(false);
  });
});

describe('windows personality: path operations', () => {
  it.each([
    ['/C:/Users/x', '/C:/Users'],
    ['/C:/Users', '/C:/'],
    ['/C:/', '/C:/'],
  ])('dirname(%j) is %j (a drive root is its own parent, never the drive-relative /C:)', (path, parent) => {
    expect(windows.dirname(path)).toBe(parent);
  });

  it('joins, names and recognises roots', () => {
    expect(windows.join('/C:/', 'x')).toBe('/C:/x');
    expect(windows.join('/C:/a', 'x')).toBe('/C:/a/x');
    expect(windows.basename('/C:/a/b.txt')).toBe('b.txt');
    expect(windows.basename('/C:/')).toBe('');
    expect(windows.isRoot('/C:/')).toBe(true);
    expect(windows.isRoot('/C:/a')).toBe(false);
  });

  it('spells paths natively for commands', () => {
    expect(windows.toNative('/C:/Users/deploy/app.ini')).toBe('C:\\Users\\deploy\\app.ini');
    expect(windows.toNative('/C:/')).toBe('C:\\');
  });

  it('isWithin keeps /C:/app2 out of /C:/app and ignores case', () => {
    expect(windows.isWithin('/C:/app2', '/C:/app')).toBe(false);
    expect(windows.isWithin('/C:/APP/x', '/C:/app')).toBe(true);
    expect(windows.isWithin('/C:/x', '/C:/')).toBe(true);
  });
});

describe('posix personality', () => {
  it('is the POSIX path policy unchanged: case matters, backslashes are name characters', () => {
    expect(posix.check('/srv/App/x', { roots: ['/srv/app'] }).allowed).toBe(false);
    expect(posix.check('/srv/app/a\\b', { roots: ['/srv/app'] })).toEqual({ allowed: true, path: '/srv/app/a\\b' });
    expect(posix.check('C:\\x', {}).allowed).toBe(false);
    expect(posix.dirname('/srv/app')).toBe('/srv');
    expect(posix.isRoot('/')).toBe(true);
    expect(posix.toNative('/srv/app')).toBe('/srv/app');
  });

  it('cli devices use the POSIX rules', () => {
    expect(personalityOf({ platform: 'cli' }).platform).toBe('posix');
  });
});

describe('PowerShell commands', () => {
  it('-EncodedCommand carries the script as base64 of UTF-16LE, and nothing else the shell could read', () => {
    const script = "Get-Item -LiteralPath 'C:\\x'; echo \"$env:USERNAME\" | Out-Null & calc";
    const line = powerShellCommand(script);
    const encoded = line.split(' ').at(-1) ?? '';
    expect(encoded).toMatch(/^[A-Za-z0-9+/=]+$/u);
    expect(Buffer.from(encoded, 'base64').toString('utf16le')).toBe(script);
    expect(line.startsWith('powershell.exe -NoLogo -NoProfile -NonInteractive')).toBe(true);
  });

  it.each([
    ['plain', "'plain'"],
    ["it's", "'it''s'"],
    ['$(calc)', "'$(calc)'"],
    ['a\u2019b', "'a\u2019\u2019b'"],
    ['\u2018x\u201B', "'\u2018\u2018x\u201B\u201B'"],
  ])('quotes %j so that no quote character ends the string early (typographic quotes included)', (value, quoted) => {
    expect(quotePowerShell(value)).toBe(quoted);
  });

  it('hashes with Get-FileHash -LiteralPath (no wildcard expansion) and prints lower-case hex', () => {
    const script = powerShellHashScript("C:\\it's\\[x].bin", 'sha512');
    expect(script).toContain("-LiteralPath 'C:\\it''s\\[x].bin'");
    expect(script).toContain('-Algorithm SHA512');
    expect(script).toContain('ToLowerInvariant()');
  });
});

describe('policyPath (what the lexical policy check sees)', () => {
  it.each([
    ['C:\\Users\\x', '/C:/Users/x'],
    ['c:/Users/x', '/C:/Users/x'],
    ['/c:\\Users\\x', '/C:/Users/x'],
    ['/srv/app/x', '/srv/app/x'],
    ['/srv/a\\b', '/srv/a\\b'],
    ['C:\\x::$DATA', 'C:\\x::$DATA'],
  ])('%j is checked as %j', (input, checked) => {
    expect(policyPath(input)).toBe(checked);
  });
});
