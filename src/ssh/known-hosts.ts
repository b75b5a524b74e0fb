// OpenSSH's known_hosts rules, reimplemented for ssh2's hostVerifier: ssh2 accepts any host key unless we check it.
import { createHash, createHmac } from 'node:crypto';
import { mkdir, open, readFile } from 'node:fs/promises';
import { dirname } from 'node:path';

import { SshgateError } from '../errors.js';
import { checkHostCertificate, isCertificateType, parseCertificate } from './host-cert.js';
import { matchPattern } from '../config/ssh-config.js';

/**
 * One valid line of a known_hosts file (sshd(8), "SSH_KNOWN_HOSTS FILE FORMAT").
 * Invariants: `key` is the decoded wire-format blob and its embedded type string equals `keyType`; exactly one of
 * `patterns` (non-empty) and `hashed` is set.
 */
export interface KnownHostsEntry {
  /** 1-based line number in the file, for messages and `ssh-keygen -R`. */
  line: number;
  /** `@revoked` or `@cert-authority`; `null` for an ordinary host key line. */
  marker: 'revoked' | 'cert-authority' | null;
  /** The comma-separated host patterns as written (case and `!` kept); `[]` when the name is hashed. */
  patterns: string[];
  /** A hashed name `|1|salt|hash`: HMAC-SHA1 keyed by the 20-byte salt over the lowercased host string. */
  hashed: { salt: Buffer; hash: Buffer } | null;
  /** The key type as written and as embedded in `key`, e.g. `ssh-ed25519`. */
  keyType: string;
  /** The public key blob in SSH wire format, exactly what ssh2 hands the hostVerifier. */
  key: Buffer;
  /** The rest of the line after the key, trimmed; `''` when absent. */
  comment: string;
}

/**
 * The outcome of {@link checkHostKey}. Only `trusted` may let a connection proceed; `unknown` may be turned into
 * a pin by accept-new mode; every other status is a refusal.
 */
export type HostKeyVerdict =
  | { status: 'trusted'; line: number }
  | { status: 'unknown' }
  | { status: 'cert-invalid'; reason: string; lines: number[] }
  | { status: 'mismatch'; lines: number[] }
  | { status: 'revoked'; line: number }
  | { status: 'other-types'; knownTypes: string[]; lines: number[] };

/** ssh2's default host key algorithms (ssh2 1.17 `DEFAULT_SERVER_HOST_KEY` with Ed25519 available), in its order. */
const SSH2_HOST_KEY_ALGORITHMS = [
  'ssh-ed25519',
  'ecdsa-sha2-nistp256',
  'ecdsa-sha2-nistp384',
  'ecdsa-sha2-nistp521',
  'rsa-sha2-512',
  'rsa-sha2-256',
  'ssh-rsa',
] as const;

/** The ssh2 algorithms that can prove possession of a key of each type; RSA keys sign with three. */
const ALGORITHMS_BY_KEY_TYPE: ReadonlyMap<string, readonly string[]> = new Map([
  ['ssh-ed25519', ['ssh-ed25519']],
  ['ecdsa-sha2-nistp256', ['ecdsa-sha2-nistp256']],
  ['ecdsa-sha2-nistp384', ['ecdsa-sha2-nistp384']],
  ['ecdsa-sha2-nistp521', ['ecdsa-sha2-nistp521']],
  ['ssh-rsa', ['rsa-sha2-512', 'rsa-sha2-256', 'ssh-rsa']],
]);

const HASH_MAGIC = '|1|';
/** HMAC-SHA1 output and salt length; OpenSSH refuses any other salt length (hostfile.c `extract_salt`). */
const SHA1_BYTES = 20;
const BASE64 = /^[A-Za-z0-9+/]+={0,2}$/;
/** A key type name: printable ASCII without spaces. */
const KEY_TYPE_NAME = /^[\x21-\x7e]+$/;
const MARKERS: ReadonlyMap<string, 'revoked' | 'cert-authority'> = new Map([
  ['@revoked', 'revoked'],
  ['@cert-authority', 'cert-authority'],
]);
/** Characters that never need shell quoting in the commands we suggest. */
const SHELL_SAFE = /^[A-Za-z0-9_@%+=:,./-]+$/;

/** Decodes canonical base64 only: OpenSSH's decoder rejects bad padding and stray bits, Node's silently skips them. */
function decodeBase64(text: string): Buffer | null {
  if (!BASE64.test(text)) return null;
  const bytes = Buffer.from(text, 'base64');
  return bytes.toString('base64') === text ? bytes : null;
}

/** The type string at the start of a wire blob, or null when the blob is malformed. */
function readKeyType(blob: Buffer): string | null {
  if (blob.length < 4) return null;
  const length = blob.readUInt32BE(0);
  if (length === 0 || length > blob.length - 4) return null;
  const type = blob.toString('latin1', 4, 4 + length);
  return KEY_TYPE_NAME.test(type) ? type : null;
}

/** Parses the host-name field: `|1|salt|hash` (both 20 bytes) or a pattern list. Null when a hash is malformed. */
function parseNames(field: string): Pick<KnownHostsEntry, 'patterns' | 'hashed'> | null {
  // OpenSSH treats any field starting with '|' as hashed (hostfile.c `match_maybe_hashed`).
  if (!field.startsWith('|')) return { patterns: field.split(','), hashed: null };
  if (!field.startsWith(HASH_MAGIC)) return null;
  const parts = field.slice(HASH_MAGIC.length).split('|').map(decodeBase64);
  const [salt, hash] = parts;
  if (parts.length !== 2 || salt?.length !== SHA1_BYTES || hash?.length !== SHA1_BYTES) return null;
  return { patterns: [], hashed: { salt, hash } };
}

/** Splits off the first field: OpenSSH separates fields with runs of spaces and tabs only. */
function nextField(text: string): [field: string, rest: string] {
  const end = text.search(/[ \t]/);
  return end < 0 ? [text, ''] : [text.slice(0, end), text.slice(end).replace(/^[ \t]+/, '')];
}

/** Parses one line, or returns null for a blank, comment or malformed line (OpenSSH skips those too). */
function parseLine(raw: string, line: number): KnownHostsEntry | null {
  let rest = raw.replace(/\r$/, '').replace(/^[ \t]+/, '');
  if (rest === '' || rest.startsWith('#')) return null;
  let marker: KnownHostsEntry['marker'] = null;
  if (rest.startsWith('@')) {
    const [markerText, afterMarker] = nextField(rest);
    const known = MARKERS.get(markerText);
    if (known === undefined) return null;
    marker = known;
    rest = afterMarker;
  }
  const [names, afterNames] = nextField(rest);
  const [keyType, afterType] = nextField(afterNames);
  const [base64, comment] = nextField(afterType);
  // A second marker is an error in OpenSSH (hostfile.c `check_markers`), so no host field starts with '@'.
  const parsedNames = names.startsWith('@') ? null : parseNames(names);
  // A missing key field decodes to null: too few fields.
  const key = decodeBase64(base64);
  // OpenSSH rejects a line whose key type field disagrees with the type inside the blob (sshkey_read).
  if (parsedNames === null || key === null || readKeyType(key) !== keyType) return null;
  return { line, marker, ...parsedNames, keyType, key, comment: comment.replace(/[ \t]+$/, '') };
}

/**
 * Parses known_hosts text as OpenSSH does (sshd(8), "SSH_KNOWN_HOSTS FILE FORMAT"; hostfile.c): fields are
 * separated by spaces or tabs, `#` starts a comment line, an optional `@revoked` or `@cert-authority` marker comes
 * first, then host names (a pattern list or one `|1|salt|hash`), key type, base64 key and an optional comment.
 * Never throws: blank, comment and malformed lines (unknown or repeated marker, too few fields, non-canonical
 * base64, a key type that disagrees with the blob, a bad hash) are skipped, and `line` stays the 1-based line
 * number in `text`. CRLF line ends are accepted.
 */
export function parseKnownHosts(text: string): KnownHostsEntry[] {
  const entries: KnownHostsEntry[] = [];
  text.split('\n').forEach((raw, index) => {
    const entry = parseLine(raw, index + 1);
    if (entry !== null) entries.push(entry);
  });
  return entries;
}

/**
 * The name known_hosts stores for a host: the lowercased host when `port` is 22, else `[host]:port`
 * (OpenSSH `put_host_port`; ssh lowercases host names before the lookup and when writing a line).
 */
export function hostString(host: string, port: number): string {
  const lower = host.toLowerCase();
  return port === 22 ? lower : `[${lower}]:${port}`;
}


/**
 * OpenSSH `match_pattern_list` over a comma list: true when some pattern matches and no negated `!pattern` does;
 * a negated match wins whatever the order. Both sides are compared lowercased.
 */
function matchPatternList(name: string, patterns: readonly string[]): boolean {
  let positive = false;
  for (const raw of patterns) {
    const negated = raw.startsWith('!');
    const pattern = (negated ? raw.slice(1) : raw).toLowerCase();
    if (matchPattern(name, pattern)) {
      // Security: a negated match excludes the host even if an earlier or later pattern matched it.
      if (negated) return false;
      positive = true;
    }
  }
  return positive;
}

/**
 * True when the entry's host names cover `host` on `port` (sshd(8), "SSH_KNOWN_HOSTS FILE FORMAT"; ssh_config(5),
 * "PATTERNS"). The name compared is {@link hostString}, so a non-22 port matches only `[host]:port` names or
 * wildcards that span the brackets (`*`, `[*.example.com]:2222`), never a plain `host` name. Patterns: comma list,
 * `*` and `?` wildcards, `!pattern` negation that vetoes the whole entry, case-insensitive. A hashed entry matches
 * when HMAC-SHA1(salt, host string) equals its hash. The marker is ignored: callers decide what it means.
 */
export function matchesHost(entry: KnownHostsEntry, host: string, port: number): boolean {
  const name = hostString(host, port);
  if (entry.hashed === null) return matchPatternList(name, entry.patterns);
  return createHmac('sha1', entry.hashed.salt).update(name).digest().equals(entry.hashed.hash);
}

/**
 * The key type string at the start of an SSH wire-format public key blob (RFC 4253 section 6.6: uint32 length,
 * then the name), e.g. `ssh-ed25519`. Throws `SshgateError('INTERNAL')` when the blob is shorter than its length
 * prefix says, the name is empty, or it is not printable ASCII.
 */
export function keyTypeOfBlob(blob: Buffer): string {
  const type = readKeyType(blob);
  if (type === null) {
    throw new SshgateError('INTERNAL', `Malformed SSH public key blob (${blob.length} bytes): no valid key type string at its start`);
  }
  return type;
}

/**
 * Checks the key a host presented against the entries, in OpenSSH's order (hostfile.c
 * `check_hostkeys_by_key_or_type`, sshconnect.c `check_host_key`). Only entries whose names match the host
 * ({@link matchesHost}) count.
 * 1. An `@revoked` entry holding this key → `revoked` (wins over any pin).
 * 2. An ordinary entry holding exactly this key → `trusted` (the first such line).
 * 3. An ordinary entry of the same key type with another key → `mismatch`, listing every such line.
 * 4. Only other key types known → `other-types`. OpenSSH 9.2 reports this as a changed key too; it is kept apart
 *    so the message can say which types are pinned, and callers must refuse it like a mismatch.
 * 5. Nothing → `unknown`.
 * A certificate blob (`*-cert-v01@openssh.com`) is checked first against `@cert-authority` entries: its key or
 * its CA key `@revoked` → `revoked`; signed by a CA of a matching `@cert-authority` line → `trusted` when
 * {@link checkHostCertificate} accepts it for `host` (lowercased, without port), else `cert-invalid` (never a
 * fallback); no matching CA → the certified plain key goes through steps 1-5, as OpenSSH retries with it.
 * Throws `SshgateError('INTERNAL')` when `blob` is malformed (see {@link keyTypeOfBlob}).
 */
export function checkHostKey(entries: readonly KnownHostsEntry[], host: string, port: number, blob: Buffer, now: Date = new Date()): HostKeyVerdict {
  const keyType = keyTypeOfBlob(blob);
  if (isCertificateType(keyType)) return checkCertificate(entries, host, port, blob, now);
  const forHost = entries.filter((entry) => entry.marker !== 'cert-authority' && matchesHost(entry, host, port));
  const revoked = forHost.find((entry) => entry.marker === 'revoked' && entry.key.equals(blob));
  if (revoked !== undefined) return { status: 'revoked', line: revoked.line };
  const pinned = forHost.filter((entry) => entry.marker === null);
  const trusted = pinned.find((entry) => entry.key.equals(blob));
  if (trusted !== undefined) return { status: 'trusted', line: trusted.line };
  const sameType = pinned.filter((entry) => entry.keyType === keyType);
  if (sameType.length > 0) return { status: 'mismatch', lines: sameType.map((entry) => entry.line) };
  if (pinned.length > 0) {
    return { status: 'other-types', knownTypes: distinct(pinned.map((entry) => entry.keyType)), lines: pinned.map((entry) => entry.line) };
  }
  return { status: 'unknown' };
}

function checkCertificate(entries: readonly KnownHostsEntry[], host: string, port: number, blob: Buffer, now: Date): HostKeyVerdict {
  let cert;
  try {
    cert = parseCertificate(blob);
  } catch (err) {
    return { status: 'cert-invalid', reason: `the host certificate is malformed (${(err as Error).message})`, lines: [] };
  }
  const forHost = entries.filter((entry) => matchesHost(entry, host, port));
  // Security: revoking the host key, the CA key or the certificate itself all refuse it.
  const revoked = forHost.find((entry) => entry.marker === 'revoked' && [cert.publicKey, cert.signatureKey, blob].some((key) => entry.key.equals(key)));
  if (revoked !== undefined) return { status: 'revoked', line: revoked.line };
  const authority = forHost.find((entry) => entry.marker === 'cert-authority' && entry.key.equals(cert.signatureKey));
  if (authority === undefined) return checkHostKey(entries, host, port, cert.publicKey, now);
  const verdict = checkHostCertificate(cert, host.toLowerCase(), now);
  if (!verdict.ok) return { status: 'cert-invalid', reason: verdict.reason, lines: [authority.line] };
  return { status: 'trusted', line: authority.line };
}

/** Lines of `@cert-authority` entries that cover the host (for messages: a CA is trusted, but ssh2 shows no certificate). */
export function certAuthorityLines(entries: readonly KnownHostsEntry[], host: string, port: number): number[] {
  return entries.filter((entry) => entry.marker === 'cert-authority' && matchesHost(entry, host, port)).map((entry) => entry.line);
}

function distinct(values: readonly string[]): string[] {
  return [...new Set(values)];
}

/**
 * The key types pinned for the host by ordinary (not `@revoked`, not `@cert-authority`) entries, in file order,
 * each once. Like ssh's `order_hostkeyalgs`, the caller offers these first so the server proves a key we know.
 */
export function knownKeyTypes(entries: readonly KnownHostsEntry[], host: string, port: number): string[] {
  return distinct(entries.filter((entry) => entry.marker === null && matchesHost(entry, host, port)).map((entry) => entry.keyType));
}

/**
 * The `algorithms.serverHostKey` list for ssh2: the algorithms for the known key types first (in the given order;
 * `ssh-rsa` expands to `rsa-sha2-512`, `rsa-sha2-256`, `ssh-rsa`), then ssh2's other default algorithms, as
 * OpenSSH's `order_hostkeyalgs` does. Keeping the others lets a server that lost the pinned type still finish the
 * key exchange, so the verifier reports `other-types` instead of an opaque negotiation failure.
 * Returns `undefined` (use ssh2's defaults) when no given type has an ssh2 algorithm (empty list, `ssh-dss`, ...).
 */
export function hostKeyAlgorithmsFor(knownTypes: readonly string[]): string[] | undefined {
  const preferred = distinct(knownTypes.flatMap((type) => ALGORITHMS_BY_KEY_TYPE.get(type) ?? []));
  if (preferred.length === 0) return undefined;
  return [...preferred, ...SSH2_HOST_KEY_ALGORITHMS.filter((algorithm) => !preferred.includes(algorithm))];
}

/** `SHA256:` and the unpadded base64 SHA-256 of the blob, exactly as `ssh-keygen -lf` and ssh print it. */
export function fingerprintSha256(blob: Buffer): string {
  return `SHA256:${createHash('sha256').update(blob).digest('base64').replace(/=+$/, '')}`;
}

/**
 * A known_hosts line pinning `blob` for the host: `hostString key-type base64`, unhashed, no trailing newline.
 * Throws `SshgateError('INTERNAL')` when `blob` is malformed.
 */
export function formatKnownHostsLine(host: string, port: number, blob: Buffer): string {
  return `${hostString(host, port)} ${keyTypeOfBlob(blob)} ${blob.toString('base64')}`;
}

/**
 * Reads and parses a known_hosts file ({@link parseKnownHosts}). A missing file (ENOENT) is an empty list, as for
 * ssh. Any other read failure (permission, a directory, ...) throws `SshgateError('CONFIG_INVALID')` naming the
 * file and `known_hosts.file`.
 */
export async function loadKnownHosts(file: string): Promise<KnownHostsEntry[]> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw new SshgateError('CONFIG_INVALID', `known_hosts.file: cannot read ${file}: ${(err as Error).message}`, { cause: err });
  }
  return parseKnownHosts(text);
}

/**
 * Appends one line to a known_hosts file (accept-new mode), like ssh's `add_host_to_hostfile`: missing parent
 * directories are created with mode 0700 and a missing file with mode 0600 (existing modes are left alone).
 * When the file does not end with a newline, one is written first so the new entry starts its own line.
 * Throws `SshgateError('INTERNAL')` when `line` contains a line break, and `SshgateError('CONFIG_INVALID')` naming
 * the file when it cannot be created or written.
 */
export async function appendKnownHost(file: string, line: string): Promise<void> {
  // Security: one call adds exactly one entry; a line break would let the caller smuggle in more.
  if (/[\r\n]/.test(line)) {
    throw new SshgateError('INTERNAL', 'A known_hosts entry must be a single line');
  }
  try {
    await mkdir(dirname(file), { recursive: true, mode: 0o700 });
    const handle = await open(file, 'a+', 0o600);
    try {
      const { size } = await handle.stat();
      let prefix = '';
      if (size > 0) {
        const last = Buffer.alloc(1);
        await handle.read(last, 0, 1, size - 1);
        if (last[0] !== 0x0a) prefix = '\n';
      }
      await handle.appendFile(`${prefix}${line}\n`);
    } finally {
      await handle.close();
    }
  } catch (err) {
    throw new SshgateError('CONFIG_INVALID', `known_hosts.file: cannot add the host key to ${file}: ${(err as Error).message}`, { cause: err });
  }
}

/** Single-quotes a word for a POSIX shell unless it is plainly safe (`[`, `]` and `~` are not: they expand). */
function shellQuote(word: string): string {
  return SHELL_SAFE.test(word) ? word : `'${word.replaceAll("'", `'\\''`)}'`;
}

/**
 * The refusal message for a host whose key is not in known_hosts: the key type, its SHA-256 fingerprint, the exact
 * command that pins it, and the `ssh-keyscan` alternative; both only after the fingerprint is checked out of band.
 * Throws `SshgateError('INTERNAL')` when `blob` is malformed.
 */
export function describeUnknownHost(host: string, port: number, blob: Buffer, file: string): string {
  const name = hostString(host, port);
  const keyType = keyTypeOfBlob(blob);
  const line = formatKnownHostsLine(host, port, blob);
  return [
    `The host key of ${name} is not in ${file}, so sshgate refused to connect (nothing was sent to the host).`,
    `The host presented a ${keyType} key with fingerprint ${fingerprintSha256(blob)}.`,
    `Check that fingerprint out of band (for example \`ssh-keygen -lf /etc/ssh/ssh_host_*_key.pub\` on the host's console), then pin the key:`,
    `  echo ${shellQuote(line)} >> ${shellQuote(file)}`,
    'or fetch it yourself and compare its fingerprint (`ssh-keygen -lf FILE`) before trusting it:',
    `  ssh-keyscan -p ${port} -t ${keyType} ${shellQuote(host.toLowerCase())} >> ${shellQuote(file)}`,
  ].join('\n');
}

/**
 * The refusal message for a host that presented a key other than the one pinned: a possible man-in-the-middle
 * warning, the new key's type and fingerprint, the `file` lines holding the known key(s) (`lines`, 1-based), and
 * the `ssh-keygen -R` command to remove them once the new key is verified. sshgate never replaces a key itself.
 * Also used for `other-types` verdicts. Throws `SshgateError('INTERNAL')` when `blob` is malformed.
 */
export function describeMismatch(host: string, port: number, blob: Buffer, file: string, lines: readonly number[]): string {
  const name = hostString(host, port);
  return [
    `WARNING: the host key of ${name} has changed, so sshgate refused to connect (nothing was sent to the host).`,
    'Someone may be intercepting this connection (a man-in-the-middle attack), or the host key was replaced.',
    `The host presented a ${keyTypeOfBlob(blob)} key with fingerprint ${fingerprintSha256(blob)}.`,
    `The key known for ${name} is in ${file} at line${lines.length === 1 ? '' : 's'} ${lines.join(', ')}.`,
    'sshgate never fixes this automatically. Verify the new fingerprint with the host\'s administrator; only then remove the old key with',
    `  ssh-keygen -R ${shellQuote(name)} -f ${shellQuote(file)}`,
    'and connect again to get the command that pins the new key.',
  ].join('\n');
}
