// Host certificates made by `ssh-keygen -s`, checked by our own parser and verifier (ssh2 has none).
import { execFileSync } from 'node:child_process';
import { generateKeyPairSync, sign } from 'node:crypto';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { checkHostCertificate, isCertificateType, parseCertificate, verifyCaSignature } from '../../../src/ssh/host-cert.js';
import { checkHostKey, parseKnownHosts } from '../../../src/ssh/known-hosts.js';

const dir = mkdtempSync(join(tmpdir(), 'sshgate-cert-'));
let serial = 0;

function keygen(args: string[]): void {
  execFileSync('ssh-keygen', ['-q', ...args], { stdio: 'ignore' });
}

/** A key pair at `dir/name` (and `.pub`); returns the public blob. */
function key(name: string, type: string, bits?: number): Buffer {
  keygen(['-t', type, ...(bits === undefined ? [] : ['-b', String(bits)]), '-N', '', '-C', '', '-f', join(dir, name)]);
  return blobOf(`${name}.pub`);
}

function blobOf(file: string): Buffer {
  const [, base64] = readFileSync(join(dir, file), 'utf8').trim().split(/\s+/u);
  return Buffer.from(base64 ?? '', 'base64');
}

/** Signs `host.pub` with CA `ca` and returns the certificate blob. */
function certify(ca: string, host: string, options: { principals?: string; validity?: string; user?: boolean; sigAlg?: string } = {}): Buffer {
  serial += 1;
  keygen([
    '-s',
    join(dir, ca),
    ...(options.user === true ? [] : ['-h']),
    '-I',
    `test-${serial}`,
    '-z',
    String(serial),
    ...(options.principals === undefined ? ['-n', '127.0.0.70,web1.example.com'] : options.principals === '' ? [] : ['-n', options.principals]),
    ...(options.validity === undefined ? [] : ['-V', options.validity]),
    ...(options.sigAlg === undefined ? [] : ['-t', options.sigAlg]),
    join(dir, `${host}.pub`),
  ]);
  return blobOf(`${host}-cert.pub`);
}

function line(marker: string, patterns: string, blob: Buffer): string {
  const type = blob.toString('latin1', 4, 4 + blob.readUInt32BE(0));
  return `${marker === '' ? '' : `${marker} `}${patterns} ${type} ${blob.toString('base64')}`;
}

const keys: Record<string, Buffer> = {};

beforeAll(() => {
  keys['ca-ed'] = key('ca-ed', 'ed25519');
  keys['ca-ec256'] = key('ca-ec256', 'ecdsa', 256);
  keys['ca-ec384'] = key('ca-ec384', 'ecdsa', 384);
  keys['ca-ec521'] = key('ca-ec521', 'ecdsa', 521);
  keys['ca-rsa'] = key('ca-rsa', 'rsa', 2048);
  keys['ca-other'] = key('ca-other', 'ed25519');
  keys['host-ed'] = key('host-ed', 'ed25519');
  keys['host-ec'] = key('host-ec', 'ecdsa', 256);
  keys['host-rsa'] = key('host-rsa', 'rsa', 2048);
});

describe('parseCertificate', () => {
  it('reads the fields ssh-keygen wrote', () => {
    const blob = certify('ca-ed', 'host-ed', { validity: '20200101:20991231' });
    const cert = parseCertificate(blob);
    expect(isCertificateType(cert.certType)).toBe(true);
    expect(cert).toMatchObject({ certType: 'ssh-ed25519-cert-v01@openssh.com', keyType: 'ssh-ed25519', type: 2, principals: ['127.0.0.70', 'web1.example.com'] });
    expect(cert.keyId).toMatch(/^test-\d+$/u);
    expect(cert.publicKey.equals(keys['host-ed']!)).toBe(true);
    expect(cert.signatureKey.equals(keys['ca-ed']!)).toBe(true);
    expect(cert.validAfter).toBeGreaterThan(0n);
  });

  it.each([
    ['a plain key', () => keys['host-ed']!],
    ['a truncated certificate', () => certify('ca-ed', 'host-ed').subarray(0, 100)],
    ['trailing bytes', () => Buffer.concat([certify('ca-ed', 'host-ed'), Buffer.from([0])])],
  ])('refuses %s', (_name, blob) => {
    expect(() => parseCertificate(blob())).toThrow();
  });
});

describe('checkHostCertificate', () => {
  it.each([
    ['an ed25519 CA', 'ca-ed', 'host-ed'],
    ['an ECDSA P-256 CA', 'ca-ec256', 'host-ed'],
    ['an ECDSA P-384 CA', 'ca-ec384', 'host-ec'],
    ['an ECDSA P-521 CA', 'ca-ec521', 'host-rsa'],
    ['an RSA CA (rsa-sha2-512)', 'ca-rsa', 'host-ed'],
  ])('accepts a valid host certificate from %s', (_name, ca, host) => {
    expect(checkHostCertificate(parseCertificate(certify(ca, host)), '127.0.0.70')).toEqual({ ok: true });
  });

  it.each([
    ['a user certificate', { user: true }, /user certificate, not a host certificate/u],
    ['an expired certificate', { validity: '20200101:20200102' }, /expired at 2020-01-0/u],
    ['a certificate not valid yet', { validity: '+1d:+2d' }, /not valid before/u],
    ['principals without the host', { principals: 'db1.example.com' }, /do not include 127\.0\.0\.70/u],
    ['no principals at all', { principals: '' }, /names no principals/u],
    ['a SHA-1 (ssh-rsa) CA signature', { ca: 'ca-rsa', sigAlg: 'ssh-rsa' }, /ssh-rsa, which sshgate does not accept/u],
  ] as const)('refuses %s', (_name, options, reason) => {
    const ca = 'ca' in options ? options.ca : 'ca-ed';
    const result = checkHostCertificate(parseCertificate(certify(ca, 'host-ed', options)), '127.0.0.70');
    expect(result.ok).toBe(false);
    expect(result.ok ? '' : result.reason).toMatch(reason);
  });

  it('refuses a principal that only differs in case or matches as a wildcard would', () => {
    const cert = parseCertificate(certify('ca-ed', 'host-ed', { principals: '*.example.com,WEB1.example.com' }));
    expect(checkHostCertificate(cert, 'web1.example.com').ok).toBe(false);
  });

  it('refuses a certificate whose signed bytes were altered (a principal swapped in)', () => {
    const blob = Buffer.from(certify('ca-ed', 'host-ed', { principals: '127.0.0.71' }));
    const at = blob.indexOf('127.0.0.71');
    blob.write('127.0.0.70', at, 'latin1');
    expect(checkHostCertificate(parseCertificate(blob), '127.0.0.70')).toEqual({ ok: false, reason: 'the CA signature does not verify' });
  });

  it('refuses a signature made with another CA key but claiming the trusted one', () => {
    const good = parseCertificate(certify('ca-ed', 'host-ed'));
    const other = parseCertificate(certify('ca-other', 'host-ed'));
    expect(verifyCaSignature(good.signatureKey, other.signatureAlgorithm, other.signatureBlob, good.signed)).toBe(false);
  });

  it('refuses a certificate with a critical option (none is defined for hosts)', () => {
    // Built by hand: ssh-keygen refuses critical options on host certificates.
    const ca = generateKeyPairSync('ed25519');
    const caRaw = ca.publicKey.export({ format: 'jwk' }).x ?? '';
    const str = (b: Buffer | string): Buffer => {
      const body = typeof b === 'string' ? Buffer.from(b) : b;
      const len = Buffer.alloc(4);
      len.writeUInt32BE(body.length);
      return Buffer.concat([len, body]);
    };
    const u64 = (n: bigint): Buffer => {
      const b = Buffer.alloc(8);
      b.writeBigUInt64BE(n);
      return b;
    };
    const u32 = (n: number): Buffer => {
      const b = Buffer.alloc(4);
      b.writeUInt32BE(n);
      return b;
    };
    const caBlob = Buffer.concat([str('ssh-ed25519'), str(Buffer.from(caRaw, 'base64url'))]);
    const hostPoint = keys['host-ed']!.subarray(keys['host-ed']!.length - 32);
    const signed = Buffer.concat([
      str('ssh-ed25519-cert-v01@openssh.com'),
      str(Buffer.alloc(32, 7)),
      str(hostPoint),
      u64(1n),
      u32(2),
      str('handmade'),
      str(str('127.0.0.70')),
      u64(0n),
      u64(0xffff_ffff_ffff_ffffn),
      str(Buffer.concat([str('force-command'), str(str('/bin/true'))])),
      str(Buffer.alloc(0)),
      str(Buffer.alloc(0)),
      str(caBlob),
    ]);
    const blob = Buffer.concat([signed, str(Buffer.concat([str('ssh-ed25519'), str(sign(null, signed, ca.privateKey))]))]);
    const cert = parseCertificate(blob);
    expect(cert.criticalOptions).toEqual(['force-command']);
    expect(checkHostCertificate(cert, '127.0.0.70')).toEqual({ ok: false, reason: 'it carries critical options sshgate does not know (force-command)' });
  });
});

describe('checkHostKey with @cert-authority', () => {
  it('trusts a certificate signed by a CA whose @cert-authority patterns match the host and port', () => {
    const cert = certify('ca-ed', 'host-ed');
    const entries = parseKnownHosts([line('@cert-authority', 'db*', keys['ca-other']!), line('@cert-authority', '[127.0.0.7?]:2222', keys['ca-ed']!)].join('\n'));
    expect(checkHostKey(entries, '127.0.0.70', 2222, cert)).toEqual({ status: 'trusted', line: 2 });
  });

  it('a CA line for another port or host does not vouch: the plain key is checked instead (unknown)', () => {
    const cert = certify('ca-ed', 'host-ed');
    const entries = parseKnownHosts(line('@cert-authority', '[127.0.0.70]:22', keys['ca-ed']!));
    expect(checkHostKey(entries, '127.0.0.70', 2222, cert)).toEqual({ status: 'unknown' });
    // ...and a pin of the plain key still works, as OpenSSH retries with the plain key.
    const pinned = parseKnownHosts(line('', '[127.0.0.70]:2222', keys['host-ed']!));
    expect(checkHostKey(pinned, '127.0.0.70', 2222, cert)).toEqual({ status: 'trusted', line: 1 });
  });

  it('the CA key as an ordinary pin does not make it a CA', () => {
    const cert = certify('ca-ed', 'host-ed');
    expect(checkHostKey(parseKnownHosts(line('', '*', keys['ca-ed']!)), '127.0.0.70', 22, cert).status).not.toBe('trusted');
  });

  it('a trusted CA with an invalid certificate is refused, never retried with the plain key', () => {
    const cert = certify('ca-ed', 'host-ed', { principals: 'elsewhere' });
    const entries = parseKnownHosts([line('@cert-authority', '*', keys['ca-ed']!), line('', '*', keys['host-ed']!)].join('\n'));
    expect(checkHostKey(entries, '127.0.0.70', 22, cert)).toMatchObject({ status: 'cert-invalid', lines: [1] });
  });

  it.each([
    ['the CA key', 'ca-ed'],
    ['the certified host key', 'host-ed'],
  ])('@revoked on %s refuses the certificate', (_name, revoked) => {
    const cert = certify('ca-ed', 'host-ed');
    const entries = parseKnownHosts([line('@cert-authority', '*', keys['ca-ed']!), line('@revoked', '*', keys[revoked]!)].join('\n'));
    expect(checkHostKey(entries, '127.0.0.70', 22, cert)).toEqual({ status: 'revoked', line: 2 });
  });

  it('the host name compared with principals is lowercased, without the port', () => {
    const cert = certify('ca-ed', 'host-ed', { principals: 'web1.example.com' });
    const entries = parseKnownHosts(line('@cert-authority', '*.example.com,[*.example.com]:*', keys['ca-ed']!));
    expect(checkHostKey(entries, 'WEB1.example.com', 2200, cert)).toEqual({ status: 'trusted', line: 1 });
  });
});
