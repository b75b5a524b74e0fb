// Every string sshgate hands to the model, to the audit log or to the process log passes through this one module,
// so a secret that a remote command prints, or that sshgate itself was configured with, stops here.
import { createHash } from 'node:crypto';

/** The labels a `<redacted:KIND>` marker can carry, in rule priority order (see {@link Redactor}). */
export const REDACTION_KINDS = [
  'private-key',
  'aws-access-key',
  'aws-secret-key',
  'azure-account-key',
  'github-token',
  'gitlab-token',
  'slack-token',
  'stripe-key',
  'anthropic-key',
  'openai-key',
  'jwt',
  'authorization',
  'bearer-token',
  'url-password',
  'api-key',
  'access-key',
  'secret',
  'token',
  'password',
  'configured-secret',
] as const;
export type RedactionKind = (typeof REDACTION_KINDS)[number];

/**
 * `kind`: each secret becomes `<redacted:KIND>` (tool output, audit records, logs).
 * `digest`: each secret becomes `<redacted:sha256:XXXXXXXX len:N>` (first 8 hex digits of the SHA-256 of the
 * value's UTF-8 bytes, N = its length in Unicode code points), so equal secrets get equal markers
 * (`ssh_read_file` with `redact: true`).
 */
export type RedactionMode = 'kind' | 'digest';

export interface RedactorOptions {
  /** Exact secret values to remove wherever they appear (passwords and passphrases sshgate was configured with). */
  readonly secrets?: readonly string[];
}

export interface RedactionResult {
  readonly text: string;
  /** How many markers were written. */
  readonly count: number;
  /** The distinct kinds found, sorted. */
  readonly kinds: readonly RedactionKind[];
}

/** Configured secrets shorter than this are ignored: replacing every `abc` or `root` would shred ordinary output. */
export const MIN_SECRET_LENGTH = 4;

interface Rule {
  readonly kind: RedactionKind | ((key: string) => RedactionKind);
  /** A cheap pre-check: the pattern cannot match when the text lacks it. */
  readonly trigger: string | RegExp;
  /** Global, with the `d` flag. The secret is the first of the groups in VALUE_GROUPS that took part. */
  readonly pattern: RegExp;
  /** Vetoes a match the pattern cannot rule out by itself. */
  readonly accept?: (value: string, groups: Readonly<Record<string, string | undefined>>) => boolean;
}

interface Span {
  start: number;
  end: number;
  kind: RedactionKind;
  /** Index of the rule that found it; the lower rank names a merged span. */
  rank: number;
}

const VALUE_GROUPS = ['secret', 'dq', 'sq', 'bare'] as const;

// Key names that carry a secret in `key=value` style pairs.
const SECRET_KEY = 'pass(?:word|wd|phrase)|pwd|secret|token|api[_-]?key|access[_-]?key|private[_-]?key';
const SECRET_KEY_RE = new RegExp(SECRET_KEY, 'i');
// A key: identifier characters around one of the words above, at most 40 either side (keeps each attempt bounded).
const KEY = `(?<key>[A-Za-z0-9_.-]{0,40}?(?:${SECRET_KEY})[A-Za-z0-9_.-]{0,40})`;
const DOUBLE_QUOTED = String.raw`"(?<dq>(?:[^"\\\r\n]|\\.)+)"`;
const SINGLE_QUOTED = String.raw`'(?<sq>[^'\r\n]+)'`;
// An unquoted value ends at whitespace, a quote, or a field separator of query strings, connection strings and
// log lines (`&`, `;`, `,`). A value whose opening quote is never closed is taken from after the quote.
const BARE_ASSIGNED = String.raw`["']?(?<bare>[^\s"'\x60,;&]+)`;
const BARE_JSON = String.raw`["']?(?<bare>[^\s"'\x60,;&}\]]+)`;
// A YAML or header value runs to the end of the line (trailing blanks are trimmed).
const BARE_LINE = String.raw`["']?(?<bare>[^\s"'][^\r\n]*)`;

// Security: the keyword alone does not make a secret. These are references to one, or a shell's working directory.
const REFERENCE_KEY_RE = /(?:file|path|dir|url|uri|name|ref)$/i;
const WORKING_DIRECTORY_KEY_RE = /^(?:old)?pwd$/i;

function secretKindOf(key: string): RedactionKind {
  if (/private[_-]?key/i.test(key)) return 'private-key';
  if (/api[_-]?key/i.test(key)) return 'api-key';
  if (/access[_-]?key/i.test(key)) return 'access-key';
  if (/secret/i.test(key)) return 'secret';
  if (/token/i.test(key)) return 'token';
  return 'password';
}

function isSecretPair(key: string, value: string): boolean {
  if (REFERENCE_KEY_RE.test(key)) return false;
  return !(WORKING_DIRECTORY_KEY_RE.test(key) && /^[/~]/.test(value));
}

const acceptPair = (value: string, groups: Readonly<Record<string, string | undefined>>): boolean =>
  isSecretPair(groups['key'] as string, value);
const hasDigit = (value: string): boolean => /\d/.test(value);

const AUTH_SCHEMES = 'Bearer|Basic|Token|Bot|Digest|Negotiate|NTLM|ApiKey|AWS4-HMAC-SHA256';

/**
 * The rules, most specific first. Every quantifier that could run long is either bounded or deterministic, and
 * every pattern that can start anywhere is pinned by a look-behind, so each pass is linear in the text length.
 */
const RULES: readonly Rule[] = [
  {
    // PEM, OpenSSH, PKCS#8, encrypted and PGP blocks; the BEGIN/END lines stay. A block cut off by truncation
    // (no END line) is redacted to the end of the text.
    kind: 'private-key',
    trigger: 'PRIVATE KEY',
    pattern:
      /(?:-{5}BEGIN [A-Z0-9 ]{0,40}PRIVATE KEY(?: BLOCK)?-{5}|-{4} BEGIN [A-Z0-9 ]{0,40}PRIVATE KEY -{4})(?<secret>[\s\S]*?)(?:-{4,5} ?END [A-Z0-9 ]{0,40}PRIVATE KEY|$)/dg,
  },
  {
    // PuTTY .ppk: the base64 lines after `Private-Lines: N` (the public lines stay).
    kind: 'private-key',
    trigger: 'Private-Lines:',
    pattern: /Private-Lines:[ \t]*\d{1,5}[ \t]*\r?\n(?<secret>(?:[A-Za-z0-9+/=]+(?:\r?\n|$))+)/dg,
  },
  {
    kind: 'aws-access-key',
    trigger: /AKIA|ASIA/,
    pattern: /(?<![A-Za-z0-9])(?<secret>(?:AKIA|ASIA)[A-Z0-9]{16})(?![A-Za-z0-9])/dg,
  },
  {
    kind: 'aws-secret-key',
    trigger: /aws_?secret/i,
    pattern:
      /(?<![A-Za-z0-9_])aws_?secret_?access_?key["']?[ \t]*[:=][ \t]*["']?(?<secret>[A-Za-z0-9/+=]{40})(?![A-Za-z0-9/+=])/dgi,
  },
  {
    kind: 'azure-account-key',
    trigger: /AccessKey=|AccountKey=/i,
    pattern: /(?<![A-Za-z0-9])(?:AccountKey|SharedAccessKey)=(?<secret>[^;\s"']+)/dgi,
  },
  {
    kind: 'github-token',
    trigger: /gh[pousr]_|github_pat_/,
    pattern: /(?<![A-Za-z0-9_])(?<secret>gh[pousr]_[A-Za-z0-9]{36,251}|github_pat_[A-Za-z0-9_]{22,251})/dg,
  },
  {
    kind: 'gitlab-token',
    trigger: 'glpat-',
    pattern: /(?<![A-Za-z0-9_-])(?<secret>glpat-[A-Za-z0-9_-]{20,})/dg,
  },
  {
    kind: 'slack-token',
    trigger: /xox[abprs]-/,
    pattern: /(?<![A-Za-z0-9_-])(?<secret>xox[abprs]-[A-Za-z0-9-]{10,})/dg,
  },
  {
    kind: 'stripe-key',
    trigger: /[rs]k_(?:live|test)_/,
    pattern: /(?<![A-Za-z0-9_])(?<secret>[rs]k_(?:live|test)_[A-Za-z0-9]{16,})/dg,
  },
  {
    kind: 'anthropic-key',
    trigger: 'sk-ant-',
    pattern: /(?<![A-Za-z0-9_-])(?<secret>sk-ant-[A-Za-z0-9_-]{20,})/dg,
  },
  {
    // `sk-` plus 20 or more characters with a digit in them: OpenAI keys, and most other `sk-` API keys.
    kind: 'openai-key',
    trigger: 'sk-',
    pattern: /(?<![A-Za-z0-9_-])(?<secret>sk-[A-Za-z0-9_-]{20,})/dg,
    accept: hasDigit,
  },
  {
    kind: 'jwt',
    trigger: 'eyJ',
    pattern: /(?<![A-Za-z0-9_-])(?<secret>eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]*)/dg,
  },
  {
    // `Authorization: <scheme> <credentials>` anywhere; without a known scheme, only a credential-like value
    // (8+ characters with a digit) counts, so prose such as "may require authorization: server message" stays.
    kind: 'authorization',
    trigger: /authorization/i,
    pattern: new RegExp(
      String.raw`(?<![A-Za-z0-9_])authorization["']?[ \t]*[:=][ \t]*["']?(?<scheme>(?:${AUTH_SCHEMES})[ \t]+)?(?<secret>[^\s"']+)`,
      'dgi',
    ),
    accept: (value, groups) => groups['scheme'] !== undefined || (value.length >= 8 && hasDigit(value)),
  },
  {
    kind: 'bearer-token',
    trigger: /bearer/i,
    pattern: /(?<![A-Za-z0-9_-])bearer[ \t]+(?<secret>[A-Za-z0-9._~+/-]{16,}=*)/dgi,
    accept: hasDigit,
  },
  {
    // scheme://user:password@host: the password goes, the user stays. The last `@` before the path ends it.
    kind: 'url-password',
    trigger: '://',
    pattern: /(?<![A-Za-z0-9+.-])[A-Za-z][A-Za-z0-9+.-]{0,31}:\/\/[^\s/?#@:]{0,256}:(?<secret>[^\s/?#]{1,256})@/dg,
  },
  {
    // key=value, key = "value", export KEY='value', key := value, 'key' => 'value': anywhere in a line.
    kind: secretKindOf,
    trigger: SECRET_KEY_RE,
    pattern: new RegExp(
      String.raw`(?<![A-Za-z0-9_.-])${KEY}["']?[ \t]*(?::=|=>|=)(?!=)[ \t]*(?:${DOUBLE_QUOTED}|${SINGLE_QUOTED}|${BARE_ASSIGNED})`,
      'dgi',
    ),
    accept: acceptPair,
  },
  {
    // "key": "value" and 'key': 'value' (JSON, Python reprs): anywhere, but with no blank before the colon,
    // which keeps Go-style messages such as `volume "default-token-x7k2p" : not found` out.
    kind: secretKindOf,
    trigger: SECRET_KEY_RE,
    pattern: new RegExp(
      String.raw`(?<q>["'])${KEY}\k<q>:(?!:)[ \t]*(?:${DOUBLE_QUOTED}|${SINGLE_QUOTED}|${BARE_JSON})`,
      'dgi',
    ),
    accept: acceptPair,
  },
  {
    // key: value (YAML, HTTP headers, curl -v): only at the start of a line (after indentation, `- `, `# `, `> `),
    // because "invalid token: expired" in the middle of a log line is prose.
    kind: secretKindOf,
    trigger: SECRET_KEY_RE,
    pattern: new RegExp(
      String.raw`^[ \t]*(?:[-#<>][ \t]*){0,3}${KEY}[ \t]*:(?:[ \t]+|(?=["']))(?:${DOUBLE_QUOTED}|${SINGLE_QUOTED}|${BARE_LINE})`,
      'dgim',
    ),
    accept: acceptPair,
  },
];

const CONFIGURED_SECRET_RANK = RULES.length;

// Security: CSI (7-bit and C1), string controls (OSC, DCS, SOS, PM, APC) up to BEL/ST or the end of the line,
// other ESC sequences, then any lone C0/C1 control but \t, \n and \r. An OSC 52 clipboard write, an OSC 8
// hyperlink or a title change never reaches a client that might render it in a terminal.
// eslint-disable-next-line no-control-regex -- control characters are what this matches
const TERMINAL_CONTROL = /(?:\x1b\[|\x9b)[0-?]*[ -/]*[@-~]?|(?:\x1b[P\]X^_]|[\x90\x98\x9d\x9e\x9f])[^\x07\x1b\x9c\n]*(?:\x07|\x1b\\|\x9c)?|\x1b[ -/]*[0-~]?|[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]/g;

/**
 * Removes terminal control sequences and lone control characters, keeping `\t`, `\n` and `\r`.
 * Returns the same string when there is nothing to remove. Linear in the input length.
 */
export function stripTerminalControls(text: string): string {
  return text.replace(TERMINAL_CONTROL, '');
}

/** Marks text this module wrote; a value that starts with it is left alone, so redacting twice changes nothing. */
const MARKER_PREFIX = '<redacted:';

function codePointLength(value: string): number {
  let n = 0;
  for (const _ of value) n++;
  return n;
}

function markerFor(value: string, kind: RedactionKind, mode: RedactionMode): string {
  if (mode === 'kind') return `${MARKER_PREFIX}${kind}>`;
  const digest = createHash('sha256').update(value, 'utf8').digest('hex').slice(0, 8);
  return `${MARKER_PREFIX}sha256:${digest} len:${codePointLength(value)}>`;
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  if (typeof value !== 'object' || value === null) return false;
  const proto: unknown = Object.getPrototypeOf(value);
  return proto === Object.prototype || proto === null;
}

/**
 * Finds and replaces secrets. What it catches, in priority order (the rank names a marker when matches overlap;
 * overlapping matches become one marker):
 * private keys (PEM/OpenSSH/PKCS#8/PGP blocks, PuTTY private lines), AWS access key ids and secret keys, Azure
 * `AccountKey=`/`SharedAccessKey=`, GitHub, GitLab, Slack, Stripe, Anthropic and OpenAI-style tokens, JWTs,
 * `Authorization:` credentials, `Bearer` tokens, passwords in URLs, `key=value` style pairs whose key contains
 * password/passwd/passphrase/pwd/secret/token/api key/access key/private key (the key stays, the value goes;
 * keys ending in file/path/dir/url/uri/name/ref, and PWD=/path, are references and stay), and every configured
 * secret of at least {@link MIN_SECRET_LENGTH} characters (also in its percent-encoded form).
 *
 * Guarantees: terminal controls are stripped before matching (so colour codes cannot split a secret from its
 * key); each call is linear in the text length; output already redacted comes back unchanged.
 * Not a boundary: a secret printed in a shape none of these rules knows (split, encoded, space-separated) passes.
 */
export class Redactor {
  readonly #secrets = new Set<string>();

  constructor(options: RedactorOptions = {}) {
    for (const secret of options.secrets ?? []) this.addSecret(secret);
  }

  /** Adds an exact secret value; values shorter than {@link MIN_SECRET_LENGTH} characters are ignored. */
  addSecret(value: string): void {
    if (value.length < MIN_SECRET_LENGTH) return;
    this.#secrets.add(value);
    // A password inside a URL shows up percent-encoded.
    this.#secrets.add(encodeURIComponent(value));
  }

  /** Strips terminal controls, then replaces every secret found by a marker in the given mode. Never throws. */
  redact(text: string, mode: RedactionMode = 'kind'): RedactionResult {
    const clean = stripTerminalControls(text);
    const spans = mergeSpans(this.#findSpans(clean));
    if (spans.length === 0) return { text: clean, count: 0, kinds: [] };
    const parts: string[] = [];
    let last = 0;
    for (const span of spans) {
      parts.push(clean.slice(last, span.start), markerFor(clean.slice(span.start, span.end), span.kind, mode));
      last = span.end;
    }
    parts.push(clean.slice(last));
    const kinds = [...new Set(spans.map((span) => span.kind))].sort();
    return { text: parts.join(''), count: spans.length, kinds };
  }

  /** {@link redact} in `kind` mode, returning the text only. */
  redactText(text: string): string {
    return this.redact(text).text;
  }

  /**
   * Returns a deep copy of a JSON-like value (plain objects, arrays, primitives) with every string redacted, and
   * every non-empty string under a secret-named key (`password`, `apiKey`, `client_secret`...) replaced whole,
   * except references (`password_file`, `PWD: '/home/x'`) and markers. The input is not modified.
   * Other objects (class instances, Buffers, Dates) are returned as they are: serialise them first. The value
   * must be acyclic.
   */
  redactValue<T>(value: T, mode: RedactionMode = 'kind'): T {
    return this.#walk(value, mode) as T;
  }

  #walk(value: unknown, mode: RedactionMode): unknown {
    if (typeof value === 'string') return this.redact(value, mode).text;
    if (Array.isArray(value)) return value.map((item: unknown) => this.#walk(item, mode));
    if (!isPlainObject(value)) return value;
    return Object.fromEntries(
      Object.entries(value).map(([key, item]) => {
        if (
          typeof item === 'string' &&
          item !== '' &&
          !item.startsWith(MARKER_PREFIX) &&
          SECRET_KEY_RE.test(key) &&
          isSecretPair(key, item)
        ) {
          return [key, markerFor(item, secretKindOf(key), mode)];
        }
        return [key, this.#walk(item, mode)];
      }),
    );
  }

  #findSpans(text: string): Span[] {
    const spans: Span[] = [];
    RULES.forEach((rule, rank) => {
      const triggered = typeof rule.trigger === 'string' ? text.includes(rule.trigger) : rule.trigger.test(text);
      if (!triggered) return;
      for (const match of text.matchAll(rule.pattern)) {
        const span = valueSpan(text, match);
        if (span === undefined) continue;
        const groups = match.groups as Record<string, string | undefined>;
        const value = text.slice(span[0], span[1]);
        if (rule.accept !== undefined && !rule.accept(value, groups)) continue;
        const kind = typeof rule.kind === 'string' ? rule.kind : rule.kind(groups['key'] as string);
        spans.push({ start: span[0], end: span[1], kind, rank });
      }
    });
    for (const secret of this.#secrets) {
      for (let at = text.indexOf(secret); at !== -1; at = text.indexOf(secret, at + secret.length)) {
        spans.push({ start: at, end: at + secret.length, kind: 'configured-secret', rank: CONFIGURED_SECRET_RANK });
      }
    }
    return spans;
  }
}

/** The value's [start, end) with surrounding whitespace trimmed; undefined when empty or already a marker. */
function valueSpan(text: string, match: RegExpExecArray): [number, number] | undefined {
  const indices = (match.indices as RegExpIndicesArray).groups as Record<string, [number, number] | undefined>;
  const group = VALUE_GROUPS.map((name) => indices[name]).find((range) => range !== undefined) as [number, number];
  const raw = text.slice(group[0], group[1]);
  const trimmed = raw.trim();
  if (trimmed === '' || trimmed.startsWith(MARKER_PREFIX)) return undefined;
  const start = group[0] + raw.length - raw.trimStart().length;
  return [start, start + trimmed.length];
}

/** Sorts spans and unites overlapping ones; a united span takes the kind of its highest-priority part. */
function mergeSpans(spans: Span[]): Span[] {
  spans.sort((a, b) => a.start - b.start || a.rank - b.rank);
  const merged: Span[] = [];
  for (const span of spans) {
    const previous = merged.at(-1);
    if (previous !== undefined && span.start < previous.end) {
      previous.end = Math.max(previous.end, span.end);
      if (span.rank < previous.rank) {
        previous.kind = span.kind;
        previous.rank = span.rank;
      }
    } else {
      merged.push({ ...span });
    }
  }
  return merged;
}
