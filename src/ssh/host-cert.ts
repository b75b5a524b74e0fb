// OpenSSH host certificates (PROTOCOL.certkeys) parsed and checked by us: ssh2 has no certificate support, so
// trusting a `@cert-authority` line means verifying the CA's signature, validity and principals here.
import { createPublicKey, verify as verifySignature, type KeyObject } from 'node:crypto';

/** The certificate type of a host certificate (PROTOCOL.certkeys: SSH2_CERT_TYPE_HOST). */
const CERT_TYPE_HOST = 2;
const CERT_SUFFIX = '-cert-v01@openssh.com';
/** uint64 "forever" of valid_before. */
const FOREVER = 0xffff_ffff_ffff_ffffn;

/** The public key fields that follow the nonce, per certified key type (PROTOCOL.certkeys). */
const KEY_FIELDS: ReadonlyMap<string, readonly ('string' | 'mpint')[]> = new Map([
  ['ssh-ed25519', ['string']],
  ['ssh-rsa', ['mpint', 'mpint']],
  ['ecdsa-sha2-nistp256', ['string', 'string']],
  ['ecdsa-sha2-nistp384', ['string', 'string']],
  ['ecdsa-sha2-nistp521', ['string', 'string']],
  ['ssh-dss', ['mpint', 'mpint', 'mpint', 'mpint']],
  ['sk-ssh-ed25519@openssh.com', ['string', 'string']],
  ['sk-ecdsa-sha2-nistp256@openssh.com', ['string', 'string', 'string']],
]);

/** CA signature algorithms accepted, with their hash: OpenSSH's default CASignatureAlgorithms minus SHA-1 `ssh-rsa`. */
const SIGNATURE_HASHES: ReadonlyMap<string, string | null> = new Map([
  ['ssh-ed25519', null],
  ['ecdsa-sha2-nistp256', 'sha256'],
  ['ecdsa-sha2-nistp384', 'sha384'],
  ['ecdsa-sha2-nistp521', 'sha512'],
  ['rsa-sha2-512', 'sha512'],
  ['rsa-sha2-256', 'sha256'],
]);

const CURVES: ReadonlyMap<string, { jwk: string; bytes: number }> = new Map([
  ['nistp256', { jwk: 'P-256', bytes: 32 }],
  ['nistp384', { jwk: 'P-384', bytes: 48 }],
  ['nistp521', { jwk: 'P-521', bytes: 66 }],
]);

/**
 * A parsed OpenSSH certificate. Invariant: `signed` is exactly the bytes the CA signed (the blob up to and
 * including the signature key), and `publicKey` is the certified key re-encoded as a plain wire-format key blob.
 */
export interface OpenSshCertificate {
  /** E.g. `ssh-ed25519-cert-v01@openssh.com`. */
  certType: string;
  /** The certified key's plain type, e.g. `ssh-ed25519`. */
  keyType: string;
  /** The certified key as a plain wire-format blob (what a known_hosts line or `@revoked` would hold). */
  publicKey: Buffer;
  serial: bigint;
  /** 1 = user, 2 = host. */
  type: number;
  keyId: string;
  principals: string[];
  /** Seconds since the epoch. */
  validAfter: bigint;
  /** Seconds since the epoch; 2^64-1 means forever. */
  validBefore: bigint;
  criticalOptions: string[];
  extensions: string[];
  /** The CA's public key blob. */
  signatureKey: Buffer;
  /** The signature algorithm name, e.g. `ssh-ed25519`, `rsa-sha2-512`. */
  signatureAlgorithm: string;
  signatureBlob: Buffer;
  signed: Buffer;
}

/** A certificate blob could not be read. */
export class CertificateFormatError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'CertificateFormatError';
  }
}

/** Reads SSH wire-format fields (RFC 4251 section 5) and throws {@link CertificateFormatError} past the end. */
class WireReader {
  offset = 0;

  constructor(private readonly data: Buffer) {}

  get done(): boolean {
    return this.offset === this.data.length;
  }

  uint32(): number {
    if (this.offset + 4 > this.data.length) throw new CertificateFormatError('truncated (uint32)');
    const value = this.data.readUInt32BE(this.offset);
    this.offset += 4;
    return value;
  }

  uint64(): bigint {
    if (this.offset + 8 > this.data.length) throw new CertificateFormatError('truncated (uint64)');
    const value = this.data.readBigUInt64BE(this.offset);
    this.offset += 8;
    return value;
  }

  bytes(): Buffer {
    const length = this.uint32();
    if (this.offset + length > this.data.length) throw new CertificateFormatError('truncated (string)');
    const value = this.data.subarray(this.offset, this.offset + length);
    this.offset += length;
    return value;
  }

  text(): string {
    return this.bytes().toString('utf8');
  }

  /** A packed list of strings (principals). */
  stringList(): string[] {
    const inner = new WireReader(this.bytes());
    const out: string[] = [];
    while (!inner.done) out.push(inner.text());
    return out;
  }

  /** A packed list of (name, data) pairs (critical options, extensions); names only. */
  nameList(): string[] {
    const inner = new WireReader(this.bytes());
    const out: string[] = [];
    while (!inner.done) {
      out.push(inner.text());
      inner.bytes();
    }
    return out;
  }
}

function wireString(value: Buffer | string): Buffer {
  const body = typeof value === 'string' ? Buffer.from(value, 'utf8') : value;
  const length = Buffer.alloc(4);
  length.writeUInt32BE(body.length);
  return Buffer.concat([length, body]);
}

/** True when `keyType` names an OpenSSH certificate (`...-cert-v01@openssh.com`). */
export function isCertificateType(keyType: string): boolean {
  return keyType.endsWith(CERT_SUFFIX);
}

/**
 * Parses an OpenSSH certificate blob (PROTOCOL.certkeys) of any key type.
 * @throws CertificateFormatError when the blob is not a well-formed certificate (unknown key type, truncated,
 *   trailing bytes).
 */
export function parseCertificate(blob: Buffer): OpenSshCertificate {
  const reader = new WireReader(blob);
  const certType = reader.text();
  if (!isCertificateType(certType)) throw new CertificateFormatError(`${certType} is not a certificate type`);
  // `sk-ssh-ed25519-cert-v01@openssh.com` certifies `sk-ssh-ed25519@openssh.com`.
  const base = certType.slice(0, -CERT_SUFFIX.length);
  const keyType = base.startsWith('sk-') ? `${base}@openssh.com` : base;
  const fields = KEY_FIELDS.get(keyType);
  if (fields === undefined) throw new CertificateFormatError(`unsupported certified key type ${keyType}`);
  reader.bytes(); // nonce
  const keyParts = fields.map(() => reader.bytes());
  const publicKey = Buffer.concat([wireString(keyType), ...keyParts.map((p) => wireString(p))]);
  const serial = reader.uint64();
  const type = reader.uint32();
  const keyId = reader.text();
  const principals = reader.stringList();
  const validAfter = reader.uint64();
  const validBefore = reader.uint64();
  const criticalOptions = reader.nameList();
  const extensions = reader.nameList();
  reader.bytes(); // reserved
  const signatureKey = reader.bytes();
  const signedLength = reader.offset;
  const signature = new WireReader(reader.bytes());
  if (!reader.done) throw new CertificateFormatError('trailing bytes after the signature');
  const signatureAlgorithm = signature.text();
  const signatureBlob = signature.bytes();
  return {
    certType,
    keyType,
    publicKey,
    serial,
    type,
    keyId,
    principals,
    validAfter,
    validBefore,
    criticalOptions,
    extensions,
    signatureKey,
    signatureAlgorithm,
    signatureBlob,
    signed: blob.subarray(0, signedLength),
  };
}

/** Strips the sign byte of a positive mpint, for JWK. */
function unsigned(mpint: Buffer): Buffer {
  let start = 0;
  while (start < mpint.length - 1 && mpint[start] === 0) start += 1;
  return mpint.subarray(start);
}

/** A node:crypto public key from an SSH wire-format public key blob (ed25519, ECDSA, RSA). */
export function publicKeyFromBlob(blob: Buffer): { keyType: string; key: KeyObject } {
  const reader = new WireReader(blob);
  const keyType = reader.text();
  let jwk: Record<string, string>;
  if (keyType === 'ssh-ed25519') {
    const point = reader.bytes();
    if (point.length !== 32) throw new CertificateFormatError('an ed25519 key must be 32 bytes');
    jwk = { kty: 'OKP', crv: 'Ed25519', x: point.toString('base64url') };
  } else if (keyType.startsWith('ecdsa-sha2-')) {
    const curveName = reader.text();
    const curve = CURVES.get(curveName);
    const point = reader.bytes();
    if (curve === undefined || `ecdsa-sha2-${curveName}` !== keyType) throw new CertificateFormatError(`unsupported ECDSA curve ${curveName}`);
    if (point.length !== 1 + 2 * curve.bytes || point[0] !== 0x04) throw new CertificateFormatError('ECDSA point is not uncompressed');
    jwk = {
      kty: 'EC',
      crv: curve.jwk,
      x: point.subarray(1, 1 + curve.bytes).toString('base64url'),
      y: point.subarray(1 + curve.bytes).toString('base64url'),
    };
  } else if (keyType === 'ssh-rsa') {
    const e = reader.bytes();
    const n = reader.bytes();
    jwk = { kty: 'RSA', e: unsigned(e).toString('base64url'), n: unsigned(n).toString('base64url') };
  } else {
    throw new CertificateFormatError(`unsupported CA key type ${keyType}`);
  }
  if (!reader.done) throw new CertificateFormatError('trailing bytes after the public key');
  try {
    return { keyType, key: createPublicKey({ key: jwk, format: 'jwk' }) };
  } catch (err) {
    throw new CertificateFormatError(`unusable ${keyType} key: ${(err as Error).message}`);
  }
}

/** Converts an SSH ECDSA signature (mpint r, mpint s) to the fixed-width r||s form node:crypto accepts. */
function ecdsaP1363(blob: Buffer, bytes: number): Buffer {
  const reader = new WireReader(blob);
  const parts = [unsigned(reader.bytes()), unsigned(reader.bytes())];
  if (!reader.done || parts.some((p) => p.length > bytes)) throw new CertificateFormatError('malformed ECDSA signature');
  return Buffer.concat(parts.map((p) => Buffer.concat([Buffer.alloc(bytes - p.length), p])));
}

/**
 * True when `signature` (algorithm `algorithm`) by the CA key `caBlob` covers `data`. Only OpenSSH's default
 * CASignatureAlgorithms without SHA-1 are accepted, and the algorithm must fit the key type.
 */
export function verifyCaSignature(caBlob: Buffer, algorithm: string, signature: Buffer, data: Buffer): boolean {
  const hash = SIGNATURE_HASHES.get(algorithm);
  if (hash === undefined) return false;
  let ca: { keyType: string; key: KeyObject };
  try {
    ca = publicKeyFromBlob(caBlob);
  } catch {
    return false;
  }
  try {
    if (ca.keyType === 'ssh-ed25519') return algorithm === 'ssh-ed25519' && signature.length === 64 && verifySignature(null, data, ca.key, signature);
    if (ca.keyType.startsWith('ecdsa-sha2-')) {
      const curve = CURVES.get(ca.keyType.slice('ecdsa-sha2-'.length));
      if (algorithm !== ca.keyType || curve === undefined) return false;
      return verifySignature(hash, data, { key: ca.key, dsaEncoding: 'ieee-p1363' }, ecdsaP1363(signature, curve.bytes));
    }
    if (ca.keyType === 'ssh-rsa') return algorithm.startsWith('rsa-sha2-') && hash !== null && verifySignature(hash, data, ca.key, signature);
  } catch {
    return false;
  }
  return false;
}

/** The outcome of {@link checkHostCertificate}: `ok`, or the first rule the certificate breaks. */
export type HostCertificateCheck = { ok: true } | { ok: false; reason: string };

/**
 * Checks a host certificate as OpenSSH's `check_host_cert` + `sshkey_cert_check_authority` do, in this order:
 * 1. it is a host certificate (type 2), not a user certificate;
 * 2. the CA key is not itself a certificate, and the CA signature verifies (SHA-1 `ssh-rsa` is refused);
 * 3. `now` lies in [valid_after, valid_before);
 * 4. the principals are not empty and one of them equals `hostName` exactly (host certificates must name the host);
 * 5. it carries no critical option (none is defined for host certificates; an unknown one must be refused).
 * Whether the CA is trusted for this host is the caller's business (a `@cert-authority` line).
 */
export function checkHostCertificate(cert: OpenSshCertificate, hostName: string, now: Date = new Date()): HostCertificateCheck {
  if (cert.type !== CERT_TYPE_HOST) return { ok: false, reason: `it is a ${cert.type === 1 ? 'user' : `type ${cert.type}`} certificate, not a host certificate` };
  let caType: string;
  try {
    caType = new WireReader(cert.signatureKey).text();
  } catch {
    return { ok: false, reason: 'its CA key is malformed' };
  }
  if (isCertificateType(caType)) return { ok: false, reason: 'its CA key is itself a certificate' };
  if (!verifyCaSignature(cert.signatureKey, cert.signatureAlgorithm, cert.signatureBlob, cert.signed)) {
    return {
      ok: false,
      reason: SIGNATURE_HASHES.has(cert.signatureAlgorithm)
        ? 'the CA signature does not verify'
        : `the CA signed it with ${cert.signatureAlgorithm}, which sshgate does not accept (SHA-1 or unsupported)`,
    };
  }
  const seconds = BigInt(Math.floor(now.getTime() / 1000));
  if (seconds < cert.validAfter) return { ok: false, reason: `it is not valid before ${formatTime(cert.validAfter)}` };
  if (cert.validBefore !== FOREVER && seconds >= cert.validBefore) return { ok: false, reason: `it expired at ${formatTime(cert.validBefore)}` };
  if (cert.principals.length === 0) return { ok: false, reason: 'it names no principals (a host certificate must name the host)' };
  if (!cert.principals.includes(hostName)) {
    return { ok: false, reason: `its principals (${cert.principals.join(', ')}) do not include ${hostName}` };
  }
  if (cert.criticalOptions.length > 0) return { ok: false, reason: `it carries critical options sshgate does not know (${cert.criticalOptions.join(', ')})` };
  return { ok: true };
}

function formatTime(seconds: bigint): string {
  return new Date(Number(seconds) * 1000).toISOString();
}
