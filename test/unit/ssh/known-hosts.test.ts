// known_hosts against OpenSSH itself: real keys from ssh-keygen, and ssh-keygen -F/-H/-R/-lf as the oracle.
import { execFileSync, spawnSync } from 'node:child_process';
import { chmod, mkdir, mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { SshgateError } from '../../../src/errors.js';
import {
  appendKnownHost,
  certAuthorityLines,
  checkHostKey,
  describeMismatch,
  describeUnknownHost,
  fingerprintSha256,
  formatKnownHostsLine,
  hostKeyAlgorithmsFor,
  hostString,
  keyTypeOfBlob,
  knownKeyTypes,
  loadKnownHosts,
  matchesHost,
  parseKnownHosts,
  type HostKeyVerdict,
  type KnownHostsEntry,
} from '../../../src/ssh/known-hosts.js';

const SSH_KEYGEN = '/usr/bin/ssh-keygen';

type KeyName = 'ed' | 'ed2' | 'ec' | 'ec384' | 'rsa';

interface TestKey {
  type: string;
  b64: string;
  blob: Buffer;
  pubFile: string;
}

const KEY_ARGS: Record<KeyName, string[]> = {
  ed: ['-t', 'ed25519'],
  ed2: ['-t', 'ed25519'],
  ec: ['-t', 'ecdsa'],
  ec384: ['-t', 'ecdsa', '-b', '384'],
  rsa: ['-t', 'rsa', '-b', '2048'],
};

let dir = '';
let fileCounter = 0;
const keys = {} as Record<KeyName, TestKey>;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'sshgate-known-hosts-'));
  for (const [name, args] of Object.entries(KEY_ARGS) as [KeyName, string[]][]) {
    const file = join(dir, `key-${name}`);
    execFileSync(SSH_KEYGEN, ['-q', ...args, '-N', '', '-C', `test-${name}`, '-f', file]);
    const [type = '', b64 = ''] = (await readFile(`${file}.pub`, 'utf8')).split(' ');
    keys[name] = { type, b64, blob: Buffer.from(b64, 'base64'), pubFile: `${file}.pub` };
  }
});

afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** Expands `{ed}` to `type base64`, `{ed.type}` and `{ed.b64}` to one field, in known_hosts lines. */
function expand(lines: readonly string[]): string {
  return lines
    .map((line) =>
      line.replace(/\{(\w+)(?:\.(type|b64))?\}/g, (_all, name: string, part: string | undefined) => {
        const key = keys[name as KeyName];
        return part === 'type' ? key.type : part === 'b64' ? key.b64 : `${key.type} ${key.b64}`;
      }),
    )
    .join('\n');
}

/** A fresh file in the temp dir holding `text`. */
async function tempFile(text: string, name = 'known_hosts'): Promise<string> {
  const file = join(dir, `${fileCounter++}-${name}`);
  await writeFile(file, text);
  return file;
}

/** OpenSSH's verdict: does `ssh-keygen -F -l` (which parses each key, like ssh) find a valid line for the host? */
function openSshFinds(file: string, host: string, port: number): boolean {
  const result = spawnSync(SSH_KEYGEN, ['-F', hostString(host, port), '-l', '-f', file], { encoding: 'utf8' });
  return result.status === 0;
}

/** Hashes every host name of the lines with `ssh-keygen -H` and returns the file. */
async function hashedFile(lines: readonly string[]): Promise<string> {
  const file = await tempFile(`${expand(lines)}\n`);
  execFileSync(SSH_KEYGEN, ['-H', '-f', file], { stdio: 'ignore' });
  return file;
}

/** A wire blob: uint32 length-prefixed type string, then `data`. */
function wireBlob(type: string, data: Buffer = Buffer.from([0, 0, 0, 1, 7])): Buffer {
  const length = Buffer.alloc(4);
  length.writeUInt32BE(Buffer.byteLength(type, 'latin1'));
  return Buffer.concat([length, Buffer.from(type, 'latin1'), data]);
}

function catchError(fn: () => unknown): unknown {
  try {
    fn();
  } catch (err) {
    return err;
  }
  return undefined;
}

describe('parseKnownHosts', () => {
  it('keeps 1-based line numbers past blank lines, comments and malformed lines', () => {
    const text = expand(['# a comment', '', '   ', 'web1 {ed} first', 'garbage line', '  \tdb1\t{ec}', '    # indented comment', '@revoked * {rsa}', '']);
    expect(parseKnownHosts(text).map((entry) => entry.line)).toEqual([4, 6, 8]);
  });

  it.each<[string, string]>([
    ['only a host name', 'web1'],
    ['no key after the type (too few fields)', 'web1 {ed.type}'],
    ['invalid base64 characters', 'web1 {ed.type} AAAA$$$$'],
    ['base64 with its padding stripped', 'web1 {ec.type} {ec.b64}!'],
    ['a key type field that disagrees with the blob', 'web1 ssh-rsa {ed.b64}'],
    ['an unknown marker', '@trusted web1 {ed}'],
    ['a marker written in upper case', '@REVOKED web1 {ed}'],
    ['two markers', '@revoked @cert-authority web1 {ed}'],
    ['a marker with no host field', '@revoked {ed}'],
    ['a lone @ as marker', '@ web1 {ed}'],
    ['a blob whose length prefix runs past its end', 'web1 ssh-ed25519 AAAACXNzaC1lZA=='],
    ['a blob with an empty type string', 'web1 ssh-ed25519 AAAAAAAAAAE='],
    ['a hashed name with another magic', '|2|c2FsdHNhbHRzYWx0c2FsdHNhbHQ=|aGFzaGhhc2hoYXNoaGFzaGhhc2g= {ed}'],
    ['a hashed name with a 4-byte salt', '|1|c2FsdA==|aGFzaGhhc2hoYXNoaGFzaGhhc2g= {ed}'],
    ['a hashed name with no hash', '|1|c2FsdHNhbHRzYWx0c2FsdHNhbHQ= {ed}'],
    ['a hashed name with a third field', '|1|c2FsdHNhbHRzYWx0c2FsdHNhbHQ=|aGFzaGhhc2hoYXNoaGFzaGhhc2g=|x {ed}'],
    ['a hashed name with a short hash', '|1|c2FsdHNhbHRzYWx0c2FsdHNhbHQ=|aGFzaA== {ed}'],
    ['a hashed name with an invalid base64 salt', '|1|c2Fsd$NhbHRzYWx0c2FsdHNhbHQ=|aGFzaGhhc2hoYXNoaGFzaGhhc2g= {ed}'],
    ['a hashed name with an invalid base64 hash', '|1|c2FsdHNhbHRzYWx0c2FsdHNhbHQ=|aGFza$hhc2hoYXNoaGFzaGhhc2g= {ed}'],
    ['an empty hashed name', '|1|| {ed}'],
    ['a marker alone', '@revoked'],
  ])('skips a line with %s, as OpenSSH does', async (_name, line) => {
    // `!` marks where to cut: "base64 with its padding stripped" removes the trailing '='.
    const text = expand([line]).replace(/=!$/, '');
    expect(parseKnownHosts(text)).toEqual([]);
    expect(openSshFinds(await tempFile(`${text}\n`), 'web1', 22)).toBe(false);
  });

  it.each<[string, string, Partial<KnownHostsEntry>]>([
    ['a comment with spaces', 'web1 {ed} root@web1 the main box', { patterns: ['web1'], comment: 'root@web1 the main box', marker: null }],
    ['tabs and runs of spaces as separators', 'web1\t\t{ed.type}  \t{ed.b64}\tc', { patterns: ['web1'], comment: 'c' }],
    ['leading whitespace', '  \tweb1 {ed}', { patterns: ['web1'] }],
    ['a CRLF line end', 'web1 {ed} c\r', { comment: 'c' }],
    ['trailing whitespace and no comment', 'web1 {ed} \t ', { comment: '' }],
    ['a @revoked marker', '@revoked * {ed}', { marker: 'revoked', patterns: ['*'] }],
    ['a @cert-authority marker', '@cert-authority *.example.com {ed}', { marker: 'cert-authority', patterns: ['*.example.com'] }],
    ['a tab after the marker', '@revoked\t*\t{ed}', { marker: 'revoked', patterns: ['*'] }],
    ['a raw pattern list (case, negation and ports kept)', 'Web1,!db*,[h]:2222 {ed}', { patterns: ['Web1', '!db*', '[h]:2222'], hashed: null }],
  ])('parses %s', (_name, line, expected) => {
    const entries = parseKnownHosts(expand([line]));
    expect(entries).toHaveLength(1);
    expect(entries[0]).toMatchObject({ line: 1, keyType: keys.ed.type, key: keys.ed.blob, ...expected });
  });

  it.each<KeyName>(['ed', 'ec', 'ec384', 'rsa'])('parses a %s key exactly as ssh-keygen wrote it', async (name) => {
    const pub = await readFile(keys[name].pubFile, 'utf8');
    const [entry] = parseKnownHosts(`web1 ${pub}`);
    expect(entry).toMatchObject({ keyType: keys[name].type, key: keys[name].blob, comment: `test-${name}` });
  });

  it('parses a name hashed by ssh-keygen -H into a 20-byte salt and hash', async () => {
    const entries = parseKnownHosts(await readFile(await hashedFile(['web1 {ed} c']), 'utf8'));
    expect(entries).toHaveLength(1);
    expect(entries[0]).toMatchObject({ patterns: [], keyType: keys.ed.type, key: keys.ed.blob, comment: 'c' });
    expect(entries[0]?.hashed?.salt).toHaveLength(20);
    expect(entries[0]?.hashed?.hash).toHaveLength(20);
  });
});

describe('hostString', () => {
  it.each<[string, string, number, string]>([
    ['a bare host on port 22', 'web1', 22, 'web1'],
    ['[host]:port on another port', 'web1', 2222, '[web1]:2222'],
    ['a lowercased host', 'Web1.Example.COM', 22, 'web1.example.com'],
    ['a lowercased host on another port', 'WEB1', 2200, '[web1]:2200'],
    ['an IPv6 address on port 22', '::1', 22, '::1'],
    ['an IPv6 address in brackets on another port', '::1', 2222, '[::1]:2222'],
  ])('gives %s', (_name, host, port, expected) => {
    expect(hostString(host, port)).toBe(expected);
  });
});

describe('matchesHost', () => {
  it.each<[string, string, string, number, boolean]>([
    ['matches a plain host on port 22', 'web1', 'web1', 22, true],
    ['matches host names case-insensitively', 'Web1.Example.COM', 'web1.example.com', 22, true],
    ['matches a mixed-case host against a lowercase entry', 'web1', 'WEB1', 22, true],
    ['does not match a name that only starts the same', 'web', 'web1', 22, false],
    ['does not match [host]:2222 against a plain host entry', 'web1', 'web1', 2222, false],
    ['matches a [host]:port entry on its port', '[web1]:2222', 'web1', 2222, true],
    ['does not match a [host]:port entry on another port', '[web1]:2222', 'web1', 2200, false],
    ['does not match a [host]:port entry on port 22', '[web1]:2222', 'web1', 22, false],
    ['does not match [host]:22 on the default port (OpenSSH stores it bare)', '[web1]:22', 'web1', 22, false],
    ['lets * cover a non-default port', '*', 'web1', 2222, true],
    ['does not let *.domain cover a non-default port', '*.example.com', 'a.example.com', 2222, false],
    ['matches a wildcard inside [host]:port', '[*.example.com]:2222', 'a.example.com', 2222, true],
    ['matches a wildcard port', '[web1]:22*', 'web1', 2222, true],
    ['matches ? as exactly one character', 'web?', 'web1', 22, true],
    ['does not match ? against no character', 'web?', 'web', 22, false],
    ['does not match ? against two characters', 'web?', 'web12', 22, false],
    ['matches an IP range with a wildcard', '10.0.1.*', '10.0.1.5', 22, true],
    ['treats a dot as a literal, not a regex', 'web.1', 'webx1', 22, false],
    ['matches a bracketed IPv6 address on a non-default port', '[::1]:2222', '::1', 2222, true],
    ['matches any name of a comma list', 'db1,web1', 'web1', 22, true],
    ['backtracks over several wildcards', 'a*b*c', 'axbybzc', 22, true],
    ['fails when the wildcards cannot cover the tail', 'a*b*c', 'axbybz', 22, false],
    ['matches trailing wildcards against nothing', 'web1**', 'web1', 22, true],
    ['negated pattern excludes a host matched by a wildcard', '*.example.com,!evil.example.com', 'evil.example.com', 22, false],
    ['negated pattern excludes a host whatever the order', '!evil.example.com,*.example.com', 'evil.example.com', 22, false],
    ['negated pattern excludes a host case-insensitively', '*.example.com,!EVIL.example.com', 'Evil.Example.com', 22, false],
    ['negated pattern leaves other hosts matched', '*.example.com,!evil.example.com', 'good.example.com', 22, true],
    ['negated wildcard excludes a whole port', '*,![*]:2222', 'web1', 2222, false],
    ['a negation alone matches nothing', '!evil', 'good', 22, false],
  ])('%s', async (_name, patterns, host, port, expected) => {
    const file = await tempFile(`${expand([`${patterns} {ed}`])}\n`);
    const [entry] = parseKnownHosts(await readFile(file, 'utf8'));
    expect(matchesHost(entry!, host, port)).toBe(expected);
    expect(openSshFinds(file, host, port)).toBe(expected);
  });

  describe('with names hashed by ssh-keygen -H', () => {
    let file = '';
    let entries: KnownHostsEntry[] = [];

    beforeAll(async () => {
      file = await hashedFile(['web1 {ed}', '[web1]:2222 {ed2}', 'db1 {ec}']);
      entries = parseKnownHosts(await readFile(file, 'utf8'));
    });

    it.each<[string, string, number, number | null]>([
      ['hashed entry matches only its own host', 'web1', 22, 1],
      ['hashed entry matches case-insensitively', 'WEB1', 22, 1],
      ['hashed [host]:port entry matches only on its port', 'web1', 2222, 2],
      ['another hashed host', 'db1', 22, 3],
      ['hashed port-22 entry does not match another port', 'db1', 2222, null],
      ['no hashed entry matches an unknown host', 'web2', 22, null],
    ])('%s', (_name, host, port, line) => {
      expect(entries.filter((entry) => matchesHost(entry, host, port)).map((entry) => entry.line)).toEqual(line === null ? [] : [line]);
      expect(openSshFinds(file, host, port)).toBe(line !== null);
    });
  });
});

describe('keyTypeOfBlob', () => {
  it.each<KeyName>(['ed', 'ec', 'ec384', 'rsa'])('reads the type of a real %s key', (name) => {
    expect(keyTypeOfBlob(keys[name].blob)).toBe(keys[name].type);
  });

  it.each<[string, Buffer]>([
    ['an empty blob', Buffer.alloc(0)],
    ['a blob shorter than its length prefix', Buffer.from([0, 0, 0])],
    ['a length prefix past the end', Buffer.from([0, 0, 0, 12, 0x73, 0x73, 0x68])],
    ['a zero-length type', Buffer.from([0, 0, 0, 0, 1, 2, 3])],
    ['a type with a space', wireBlob('ssh ed25519')],
    ['a type with a control character', wireBlob('ssh-\x1bed25519')],
    ['a type with a non-ASCII byte', wireBlob('ssh-\xe9d25519')],
  ])('throws INTERNAL for %s', (_name, blob) => {
    const err = catchError(() => keyTypeOfBlob(blob));
    expect(err).toBeInstanceOf(SshgateError);
    expect(err).toMatchObject({ code: 'INTERNAL' });
  });
});

describe('checkHostKey', () => {
  it.each<[string, string[], string, number, KeyName, HostKeyVerdict]>([
    ['trusts the pinned ed25519 key', ['web1 {ed}'], 'web1', 22, 'ed', { status: 'trusted', line: 1 }],
    ['trusts a key pinned on a non-default port', ['web1 {ed2}', '[web1]:2222 {ed}'], 'web1', 2222, 'ed', { status: 'trusted', line: 2 }],
    ['trusts a pinned rsa key', ['web1 {ed}', 'web1 {rsa}'], 'web1', 22, 'rsa', { status: 'trusted', line: 2 }],
    ['trusts a key through a wildcard pin', ['*.example.com {ec}'], 'a.example.com', 22, 'ec', { status: 'trusted', line: 1 }],
    ['trusts the matching key when a stale one of the same type is also listed', ['web1 {ed2}', 'web1 {ed}'], 'web1', 22, 'ed', { status: 'trusted', line: 2 }],
    ['refuses a changed ed25519 key for a host known on a non-default port', ['[web1]:2222 {ed}'], 'web1', 2222, 'ed2', { status: 'mismatch', lines: [1] }],
    ['refuses a changed key and names every line of that type', ['web1 {ed}', 'web1 {rsa}', 'db1 {ed2}', 'web* {ed}'], 'web1', 22, 'ed2', { status: 'mismatch', lines: [1, 4] }],
    ['refuses a key of another type than the ones pinned', ['web1 {ec}', 'web1 {rsa}', 'web1 {ec}', 'db1 {ed}'], 'web1', 22, 'ed', { status: 'other-types', knownTypes: ['ecdsa-sha2-nistp256', 'ssh-rsa'], lines: [1, 2, 3] }],
    ['treats another ecdsa curve as another type', ['web1 {ec384}'], 'web1', 22, 'ec', { status: 'other-types', knownTypes: ['ecdsa-sha2-nistp384'], lines: [1] }],
    ['reports unknown when the host is not listed', ['db1 {ed}'], 'web1', 22, 'ed', { status: 'unknown' }],
    ['reports unknown for an empty file', [], 'web1', 22, 'ed', { status: 'unknown' }],
    ['does not let a port-22 pin vouch for port 2222', ['web1 {ed}'], 'web1', 2222, 'ed', { status: 'unknown' }],
    ['does not let a port-2222 pin vouch for port 22', ['[web1]:2222 {ed}'], 'web1', 22, 'ed', { status: 'unknown' }],
    ['refuses a revoked key even when it is also pinned', ['web1 {ed}', '@revoked * {ed}'], 'web1', 22, 'ed', { status: 'revoked', line: 2 }],
    ['refuses a revoked key before reporting a mismatch', ['web1 {ed2}', '@revoked web1 {ed}'], 'web1', 22, 'ed', { status: 'revoked', line: 2 }],
    ['ignores a @revoked line for another host', ['web1 {ed}', '@revoked db1 {ed}'], 'web1', 22, 'ed', { status: 'trusted', line: 1 }],
    ['does not count a @revoked line as a pin for the host', ['@revoked web1 {ed2}'], 'web1', 22, 'ed', { status: 'unknown' }],
    ['does not trust a key listed only as @cert-authority', ['@cert-authority * {ed}'], 'web1', 22, 'ed', { status: 'unknown' }],
    ['does not count a @cert-authority key as a mismatch', ['@cert-authority * {ed2}', 'web1 {ed}'], 'web1', 22, 'ed', { status: 'trusted', line: 2 }],
    ['negated pattern keeps a wildcard pin from vouching for the excluded host', ['*.example.com,!evil.example.com {ed}'], 'evil.example.com', 22, 'ed', { status: 'unknown' }],
  ])('%s', (_name, lines, host, port, presented, expected) => {
    expect(checkHostKey(parseKnownHosts(expand(lines)), host, port, keys[presented].blob)).toEqual(expected);
  });

  it.each<[string, string, number, KeyName, HostKeyVerdict]>([
    ['trusts a hashed pin', 'web1', 22, 'ed', { status: 'trusted', line: 1 }],
    ['trusts a hashed pin on a non-default port', 'web1', 2222, 'ed2', { status: 'trusted', line: 2 }],
    ['refuses a changed key for a hashed pin', 'web1', 2222, 'ed', { status: 'mismatch', lines: [2] }],
    ['reports unknown for a host hashed nowhere', 'web2', 22, 'ed', { status: 'unknown' }],
  ])('%s (names hashed by ssh-keygen -H)', async (_name, host, port, presented, expected) => {
    const entries = await loadKnownHosts(await hashedFile(['web1 {ed}', '[web1]:2222 {ed2}']));
    expect(checkHostKey(entries, host, port, keys[presented].blob)).toEqual(expected);
  });

  it('throws INTERNAL for a malformed presented blob', () => {
    expect(catchError(() => checkHostKey([], 'web1', 22, Buffer.from([0, 0, 0, 9])))).toMatchObject({ code: 'INTERNAL' });
  });
});

describe('@cert-authority', () => {
  /** A host certificate for `host` (the ed key), signed by the `ca` key (ssh-keygen -s), as a wire blob. */
  async function certificate(ca: KeyName, principals: string): Promise<Buffer> {
    const file = join(dir, `cert-${fileCounter++}`);
    await writeFile(`${file}.pub`, `${keys.ed.type} ${keys.ed.b64}\n`);
    execFileSync(SSH_KEYGEN, ['-q', '-s', join(dir, `key-${ca}`), '-h', '-I', 'host', '-n', principals, `${file}.pub`], { stdio: 'ignore' });
    return Buffer.from((await readFile(`${file}-cert.pub`, 'utf8')).split(' ')[1] ?? '', 'base64');
  }

  it.each<[string, string[], string, number, string]>([
    ['trusts a certificate from a CA whose pattern covers the host', ['@cert-authority *.example.com {ec}'], 'web1.example.com', 22, 'trusted'],
    ['does not trust a CA line for another host: the plain key is checked instead', ['@cert-authority db1 {ec}'], 'web1.example.com', 22, 'unknown'],
    ['a negated pattern keeps the CA from vouching for the excluded host', ['@cert-authority *.example.com,!web1.example.com {ec}'], 'web1.example.com', 22, 'unknown'],
    ['a plain pin of the certified key still trusts it when no CA covers the host', ['web1.example.com {ed}'], 'web1.example.com', 22, 'trusted'],
    ['a certificate naming another host is refused even though its key is pinned', ['@cert-authority * {ec}', 'web2.example.com {ed}'], 'web2.example.com', 22, 'cert-invalid'],
    ['a revoked CA refuses the certificate', ['@cert-authority * {ec}', '@revoked * {ec}'], 'web1.example.com', 22, 'revoked'],
  ])('%s', async (_name, lines, host, port, status) => {
    const blob = await certificate('ec', 'web1.example.com');
    expect(checkHostKey(parseKnownHosts(expand(lines)), host, port, blob).status).toBe(status);
  });

  it('certAuthorityLines lists the CA lines that cover a host and port', () => {
    const entries = parseKnownHosts(expand(['@cert-authority * {ec}', 'web1 {ed}', '@cert-authority [web1]:2222 {rsa}', '@cert-authority db* {ed2}']));
    expect(certAuthorityLines(entries, 'web1', 22)).toEqual([1]);
    expect(certAuthorityLines(entries, 'web1', 2222)).toEqual([1, 3]);
  });
});

describe('knownKeyTypes', () => {
  const lines = ['web1 {ec}', '@revoked web1 {rsa}', '@cert-authority web1 {ec384}', 'db1 {rsa}', 'web1 {ed}', 'web* {ec}'];

  it.each<[string, string, number, string[]]>([
    ['lists pinned types in file order, once each, without @revoked or @cert-authority keys', 'web1', 22, ['ecdsa-sha2-nistp256', 'ssh-ed25519']],
    ['lists only the types pinned for that host', 'db1', 22, ['ssh-rsa']],
    ['lists nothing for a port with no pin', 'web1', 2222, []],
  ])('%s', (_name, host, port, expected) => {
    expect(knownKeyTypes(parseKnownHosts(expand(lines)), host, port)).toEqual(expected);
  });
});

describe('hostKeyAlgorithmsFor', () => {
  const SSH2_DEFAULTS = ['ssh-ed25519', 'ecdsa-sha2-nistp256', 'ecdsa-sha2-nistp384', 'ecdsa-sha2-nistp521', 'rsa-sha2-512', 'rsa-sha2-256', 'ssh-rsa'];

  it.each<[string, string[], string[] | undefined]>([
    ['leaves ssh2 defaults alone when nothing is known', [], undefined],
    ['leaves ssh2 defaults alone when only types ssh2 cannot use are known', ['ssh-dss', 'sk-ssh-ed25519@openssh.com'], undefined],
    ['offers ed25519 first, then the rest', ['ssh-ed25519'], SSH2_DEFAULTS],
    ['offers an ecdsa curve first', ['ecdsa-sha2-nistp384'], ['ecdsa-sha2-nistp384', 'ssh-ed25519', 'ecdsa-sha2-nistp256', 'ecdsa-sha2-nistp521', 'rsa-sha2-512', 'rsa-sha2-256', 'ssh-rsa']],
    ['expands ssh-rsa to its three signature algorithms', ['ssh-rsa'], ['rsa-sha2-512', 'rsa-sha2-256', 'ssh-rsa', 'ssh-ed25519', 'ecdsa-sha2-nistp256', 'ecdsa-sha2-nistp384', 'ecdsa-sha2-nistp521']],
    ['keeps the known order and drops duplicates', ['ecdsa-sha2-nistp521', 'ssh-dss', 'ssh-rsa', 'ecdsa-sha2-nistp521'], ['ecdsa-sha2-nistp521', 'rsa-sha2-512', 'rsa-sha2-256', 'ssh-rsa', 'ssh-ed25519', 'ecdsa-sha2-nistp256', 'ecdsa-sha2-nistp384']],
    ['ignores a type named like an Object property', ['constructor'], undefined],
  ])('%s', (_name, types, expected) => {
    expect(hostKeyAlgorithmsFor(types)).toEqual(expected);
  });
});

describe('fingerprintSha256', () => {
  it.each<KeyName>(['ed', 'ec', 'ec384', 'rsa'])('prints a %s key exactly as ssh-keygen -lf', (name) => {
    const printed = execFileSync(SSH_KEYGEN, ['-lf', keys[name].pubFile], { encoding: 'utf8' }).split(' ')[1];
    expect(fingerprintSha256(keys[name].blob)).toBe(printed);
  });
});

describe('formatKnownHostsLine', () => {
  it.each<[string, string, number, KeyName, string]>([
    ['a bare host on port 22', 'web1', 22, 'ed', 'web1'],
    ['[host]:port on another port', 'web1', 2222, 'ec', '[web1]:2222'],
    ['a lowercased host', 'Web1.Example.com', 22, 'rsa', 'web1.example.com'],
  ])('writes %s that OpenSSH finds and we trust', async (_name, host, port, key, name) => {
    const line = formatKnownHostsLine(host, port, keys[key].blob);
    expect(line).toBe(`${name} ${keys[key].type} ${keys[key].b64}`);
    const file = await tempFile(`${line}\n`);
    expect(openSshFinds(file, host, port)).toBe(true);
    expect(checkHostKey(await loadKnownHosts(file), host, port, keys[key].blob)).toEqual({ status: 'trusted', line: 1 });
  });
});

describe('loadKnownHosts', () => {
  it('reads a missing file as empty, as ssh does', async () => {
    expect(await loadKnownHosts(join(dir, 'no-such-dir', 'known_hosts'))).toEqual([]);
  });

  it('reads and parses an existing file', async () => {
    const entries = await loadKnownHosts(await tempFile(expand(['# pinned', 'web1 {ed}'])));
    expect(entries).toMatchObject([{ line: 2, patterns: ['web1'], keyType: keys.ed.type }]);
  });

  it('throws CONFIG_INVALID naming the file when it cannot be read', async () => {
    const target = join(dir, 'a-directory');
    await mkdir(target);
    const err: unknown = await loadKnownHosts(target).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(SshgateError);
    expect(err).toMatchObject({ code: 'CONFIG_INVALID' });
    expect((err as SshgateError).message).toContain(target);
  });
});

describe('appendKnownHost', () => {
  it('creates missing parent directories with mode 0700 and the file with mode 0600', async () => {
    const parent = join(dir, `${fileCounter++}-new`, '.ssh');
    const file = join(parent, 'known_hosts');
    await appendKnownHost(file, 'web1 ssh-ed25519 AAAA');
    expect(await readFile(file, 'utf8')).toBe('web1 ssh-ed25519 AAAA\n');
    expect((await stat(file)).mode & 0o777).toBe(0o600);
    expect((await stat(parent)).mode & 0o777).toBe(0o700);
    expect((await stat(join(parent, '..'))).mode & 0o777).toBe(0o700);
  });

  it.each<[string, string, string]>([
    ['appends to an empty file', '', 'new\n'],
    ['appends after a trailing newline', 'old\n', 'old\nnew\n'],
    ['starts a fresh line when the file lacks a trailing newline', 'old', 'old\nnew\n'],
    ['starts a fresh line after a last comment line without a newline', '# only a comment', '# only a comment\nnew\n'],
  ])('%s', async (_name, before, after) => {
    const file = await tempFile(before);
    await appendKnownHost(file, 'new');
    expect(await readFile(file, 'utf8')).toBe(after);
  });

  it('appends two entries on two lines', async () => {
    const file = await tempFile('old');
    await appendKnownHost(file, 'one');
    await appendKnownHost(file, 'two');
    expect(await readFile(file, 'utf8')).toBe('old\none\ntwo\n');
  });

  it('leaves the mode of an existing file alone', async () => {
    const file = await tempFile('old\n');
    await chmod(file, 0o644);
    await appendKnownHost(file, 'new');
    expect((await stat(file)).mode & 0o777).toBe(0o644);
  });

  it.each<[string, string]>([
    ['a newline', 'web1 ssh-ed25519 AAAA\n* ssh-ed25519 BBBB'],
    ['a carriage return', 'web1 ssh-ed25519 AAAA\r* ssh-ed25519 BBBB'],
  ])('refuses a line with %s that would smuggle in a second entry', async (_name, line) => {
    const file = join(dir, `${fileCounter++}-never-created`);
    const err: unknown = await appendKnownHost(file, line).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 'INTERNAL' });
    expect(await loadKnownHosts(file)).toEqual([]);
  });

  it('throws CONFIG_INVALID naming the file when it cannot be written', async () => {
    const file = join(await tempFile('a regular file', 'not-a-dir'), 'known_hosts');
    const err: unknown = await appendKnownHost(file, 'new').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(SshgateError);
    expect(err).toMatchObject({ code: 'CONFIG_INVALID' });
    expect((err as SshgateError).message).toContain(file);
  });
});

describe('describeUnknownHost', () => {
  it.each<[string, string, number, KeyName]>([
    ['a host on port 22', 'web1', 22, 'ed'],
    ['a host on a non-default port', 'Web1', 2222, 'rsa'],
  ])('tells how to pin the key of %s, and the pin works', async (_name, host, port, key) => {
    const parent = join(dir, `${fileCounter++} it's here`);
    await mkdir(parent);
    const file = join(parent, 'known_hosts');
    const message = describeUnknownHost(host, port, keys[key].blob, file);

    expect(message).toContain(hostString(host, port));
    expect(message).toContain(fingerprintSha256(keys[key].blob));
    expect(message).toContain(keys[key].type);
    expect(message).toContain(`ssh-keyscan -p ${port} -t ${keys[key].type} ${host.toLowerCase()} >> `);
    const pin = message.split('\n').find((line) => line.startsWith('  echo '));
    expect(pin).toBeDefined();
    execFileSync('sh', ['-c', pin!]);
    expect(checkHostKey(await loadKnownHosts(file), host, port, keys[key].blob)).toEqual({ status: 'trusted', line: 1 });
  });
});

describe('describeMismatch', () => {
  it.each<[string, number, number[], string]>([
    ['one line', 22, [1], 'at line 1.'],
    ['several lines on a non-default port', 2222, [1, 3], 'at lines 1, 3.'],
  ])('warns of a man-in-the-middle and names %s to remove with ssh-keygen -R', async (_name, port, lines, where) => {
    const parent = join(dir, `${fileCounter++} it's here`);
    await mkdir(parent);
    const file = join(parent, 'known_hosts');
    const name = hostString('web1', port);
    await writeFile(file, `${expand([`${name} {ed}`, 'db1 {ed}', `${name} {ed}`])}\n`);
    const message = describeMismatch('web1', port, keys.ed2.blob, file, lines);

    expect(message).toContain('man-in-the-middle');
    expect(message).toContain('never fixes this automatically');
    expect(message).toContain(fingerprintSha256(keys.ed2.blob));
    expect(message).toContain(keys.ed2.type);
    expect(message).toContain(where);
    const remove = message.split('\n').find((line) => line.startsWith('  ssh-keygen -R '));
    expect(remove).toBe(`  ssh-keygen -R ${port === 22 ? 'web1' : `'[web1]:${port}'`} -f '${file.replace("'", `'\\''`)}'`);
    execFileSync('sh', ['-c', remove!], { stdio: 'ignore' });
    expect((await loadKnownHosts(file)).map((entry) => entry.patterns)).toEqual([['db1']]);
  });
});
