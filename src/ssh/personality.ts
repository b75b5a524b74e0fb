// How a host's SFTP server spells paths. POSIX hosts take the paths as they are; OpenSSH for Windows serves
// `/C:/Users/x`, compares names case-insensitively and accepts aliases of a file (`x.txt.`, `x.txt::$DATA`,
// `PROGRA~1`, `\\?\C:\...`), so a Windows path must be canonicalised, and those aliases refused, before it is
// compared with roots and restricted paths.
import { posix } from 'node:path';
import { checkRemotePath, isUnder, type PathContext, type PathDecision, type PathRules } from '../policy/path-policy.js';

/** The path conventions of a host (`platform` in the config; `cli` devices use the POSIX rules). */
export type PathPlatform = 'posix' | 'windows';

/** Path operations that depend on the host's platform. Every path given to them is already normalised. */
export interface PathPersonality {
  readonly platform: PathPlatform;
  /**
   * The lexical check of a path the model (or the remote server) gave: screening, normalisation, roots and
   * restricted paths. When allowed, `path` is the canonical SFTP path every later operation must use.
   * Never throws.
   */
  check(path: string, rules: PathRules, context?: PathContext): PathDecision;
  /** True when `path` equals `ancestor` or lies below it (case-insensitively on Windows). */
  isWithin(path: string, ancestor: string): boolean;
  /** The parent directory; a file system root (`/`, `/C:/`) is its own parent. */
  dirname(path: string): string;
  /** `dir` + one more segment. */
  join(dir: string, name: string): string;
  /** The last segment (`''` for a root). */
  basename(path: string): string;
  /** True for a file system root: `/` on POSIX, a drive root such as `/C:/` on Windows. */
  isRoot(path: string): boolean;
  /** The path as the host's own commands spell it (`C:\Users\x` on Windows; unchanged on POSIX). */
  toNative(path: string): string;
}

/** Paths longer than this are cut in messages (the model controls them and messages are echoed back). */
const MESSAGE_PATH_CHARS = 200;

function show(path: string): string {
  const cut = path.length > MESSAGE_PATH_CHARS ? `${path.slice(0, MESSAGE_PATH_CHARS)}…` : path;
  return JSON.stringify(cut).slice(1, -1);
}

function deny(rule: string, path: string, message: string): PathDecision {
  return { allowed: false, rule, path, message };
}

const posixPersonality: PathPersonality = {
  platform: 'posix',
  check: (path, rules, context) => checkRemotePath(path, rules, context),
  isWithin: (path, ancestor) => isUnder(path, ancestor),
  dirname: (path) => posix.dirname(path),
  join: (dir, name) => posix.join(dir, name),
  basename: (path) => posix.basename(path),
  isRoot: (path) => path === '/',
  toNative: (path) => path,
};

/** Names Windows maps to devices in every directory, with or without an extension (`NUL.txt` is NUL). */
const WINDOWS_DEVICE = /^(con|prn|aux|nul|com[0-9¹²³]|lpt[0-9¹²³]|conin\$|conout\$|clock\$)(\..*)?$/iu;
/** Characters Win32 refuses in names; `:` outside the drive selects an NTFS alternate data stream. */
const WINDOWS_RESERVED_CHARS = /[<>:"|?*]/u;
/** An 8.3 short name (`PROGRA~1`): an alias of a long name that a lexical rule would not recognise. */
const WINDOWS_SHORT_NAME = /~\d/u;

/**
 * Case folding that keeps the length of the string: each code point is upper-cased only when that yields
 * exactly one code point (NTFS compares names through a per-code-point upcase table; `ß` must not become `SS`,
 * which would make two different names compare equal).
 */
export function foldWindowsCase(value: string): string {
  let out = '';
  // Code point by code point on purpose: NTFS folds code points, not grapheme clusters.
  for (const ch of value) {
    const upper = ch.toUpperCase();
    out += Array.from(upper).length === 1 ? upper : ch;
  }
  return out;
}

/** The result of {@link normaliseWindowsPath}. */
export type WindowsNormalisation = { ok: true; path: string } | { ok: false; rule: string; message: string };

/**
 * Canonicalises a Windows path to the SFTP form OpenSSH for Windows serves: `C:\Users\x`, `C:/Users/x`,
 * `/c:/Users/x/` and `/C:\Users\.\x` all become `/C:/Users/x`; a drive root is `/C:/`. In order:
 * 1. non-empty, no NUL, no control character;
 * 2. backslashes become slashes;
 * 3. UNC and device paths (`\\server\share`, `\\?\C:\`, `\\.\`) are refused (rule `windows_unc`);
 * 4. a drive letter is required (`windows_drive`); a drive-relative path such as `C:x` is refused;
 * 5. `.` and empty segments drop; `..` pops a segment and stops at the drive root;
 * 6. every segment is refused when Windows would read it as another name: a reserved character or an
 *    alternate data stream (`windows_name`), a trailing dot or space, which Windows strips
 *    (`windows_trailing_dot_or_space`), a device name such as `NUL` or `COM1.txt` (`windows_device`), an 8.3
 *    short name such as `PROGRA~1` (`windows_short_name`).
 * Case is preserved, except the drive letter, which is upper-cased. Never throws.
 */
export function normaliseWindowsPath(input: string): WindowsNormalisation {
  const fail = (rule: string, message: string): WindowsNormalisation => ({ ok: false, rule, message });
  if (input === '') return fail('empty', 'The path is empty; give an absolute path such as /C:/Users/me/file.txt.');
  // Security: a NUL ends the string on the remote side, so it could act on a different path than the one checked.
  if (input.includes('\0')) return fail('nul_byte', `The path "${show(input)}" contains a NUL byte, which no file name may contain.`);
  if (/\p{Cc}/u.test(input)) {
    return fail('control_character', `The path "${show(input)}" contains a control character (such as a newline, tab or escape); these are refused.`);
  }
  const slashed = input.replaceAll('\\', '/');
  // Security: UNC and device namespaces reach other machines or bypass Win32 name normalisation.
  if (slashed.startsWith('//')) {
    return fail('windows_unc', `The path "${show(input)}" is a UNC or device path (\\\\server\\share, \\\\?\\, \\\\.\\); use a drive path such as /C:/Users/me.`);
  }
  const match = /^\/?([A-Za-z]):(\/.*)?$/u.exec(slashed);
  if (match === null) {
    if (/^\/?[A-Za-z]:/u.test(slashed)) {
      return fail('windows_drive', `The path "${show(input)}" is relative to the current directory of a drive; write it from the drive root, such as C:/Users/me.`);
    }
    return fail('windows_drive', `The path "${show(input)}" has no drive letter; Windows paths look like /C:/Users/me or C:\\Users\\me.`);
  }
  const drive = (match[1] ?? 'C').toUpperCase();
  const segments: string[] = [];
  for (const segment of (match[2] ?? '/').split('/')) {
    if (segment === '' || segment === '.') continue;
    if (segment === '..') {
      segments.pop();
      continue;
    }
    if (WINDOWS_RESERVED_CHARS.test(segment)) {
      return fail(
        'windows_name',
        `The name "${show(segment)}" contains a character Windows reserves (< > : " | ? *); a colon would name an NTFS alternate data stream of the file.`,
      );
    }
    if (/[. ]$/u.test(segment)) {
      return fail('windows_trailing_dot_or_space', `The name "${show(segment)}" ends with a dot or a space, which Windows strips (so it names another file); remove it.`);
    }
    if (WINDOWS_DEVICE.test(segment)) return fail('windows_device', `The name "${show(segment)}" is a Windows device name (CON, NUL, COM1, ...), not a file.`);
    if (WINDOWS_SHORT_NAME.test(segment)) {
      return fail('windows_short_name', `The name "${show(segment)}" looks like an 8.3 short name (such as PROGRA~1), an alias of a long name; use the long name.`);
    }
    segments.push(segment);
  }
  return { ok: true, path: `/${drive}:/${segments.join('/')}` };
}

function windowsWithin(path: string, ancestor: string): boolean {
  const p = foldWindowsCase(path);
  const a = foldWindowsCase(ancestor.endsWith('/') ? ancestor.slice(0, -1) : ancestor);
  // Security: the '/' suffix is what keeps /C:/app2 out of /C:/app.
  return p === a || p.startsWith(`${a}/`);
}

/** Normalised configured rule paths; a rule that is not a valid Windows path matches nothing (fails closed for roots). */
function windowsRulePaths(paths: readonly string[] | undefined): (string | null)[] {
  return (paths ?? []).map((p) => {
    const n = normaliseWindowsPath(p);
    return n.ok ? n.path : null;
  });
}

const windowsPersonality: PathPersonality = {
  platform: 'windows',
  check(path, rules, context = {}) {
    const normalised = normaliseWindowsPath(path);
    if (!normalised.ok) return deny(normalised.rule, path, normalised.message);
    const candidate = normalised.path;
    const keyPrefix = context.host === undefined ? '' : `hosts.${context.host}.`;
    const ofHost = context.host === undefined ? '' : ` of host ${context.host}`;
    const roots = windowsRulePaths(rules.roots);
    if (roots.length > 0 && !roots.some((root) => root !== null && windowsWithin(candidate, root))) {
      return deny(
        'roots',
        candidate,
        `${show(candidate)} is outside the allowed roots [${roots.map((r) => (r === null ? '(invalid)' : show(r))).join(', ')}]${ofHost} ` +
          `(config key ${keyPrefix}roots; compared without regard to case); use a path under one of them.`,
      );
    }
    for (const [i, carveOut] of windowsRulePaths(rules.restricted_paths).entries()) {
      // Security: a restricted path that is not a valid Windows path cannot be matched safely: refuse everything.
      if (carveOut === null || windowsWithin(candidate, carveOut)) {
        return deny(
          `restricted_paths[${i}]`,
          candidate,
          `${show(candidate)} is inside the restricted path ${show(carveOut ?? rules.restricted_paths?.[i] ?? '')}${ofHost} ` +
            `(config key ${keyPrefix}restricted_paths[${i}]); it may not be used, nor anything below it.`,
        );
      }
    }
    return { allowed: true, path: candidate };
  },
  isWithin: windowsWithin,
  dirname(path) {
    const drive = /^\/[A-Z]:\/?/u.exec(path)?.[0];
    if (drive === undefined) return posix.dirname(path);
    const parent = posix.dirname(path);
    return parent.length <= 3 ? `${drive.slice(0, 3)}/` : parent;
  },
  join: (dir, name) => (dir.endsWith('/') ? `${dir}${name}` : `${dir}/${name}`),
  basename: (path) => (/^\/[A-Za-z]:\/?$/u.test(path) ? '' : posix.basename(path)),
  isRoot: (path) => /^\/[A-Za-z]:\/?$/u.test(path),
  toNative: (path) => {
    const match = /^\/([A-Za-z]):(\/.*)?$/u.exec(path);
    if (match === null) return path.replaceAll('/', '\\');
    return `${match[1] ?? ''}:${(match[2] ?? '/').replaceAll('/', '\\')}`;
  },
};

/** The path personality of a host: Windows for `platform: windows`, POSIX otherwise (posix, cli). */
export function personalityOf(host: { platform: 'posix' | 'windows' | 'cli' }): PathPersonality {
  return host.platform === 'windows' ? windowsPersonality : posixPersonality;
}

/**
 * Quotes a value as one PowerShell single-quoted string. PowerShell also ends a single-quoted string at the
 * typographic quotes U+2018, U+2019, U+201A and U+201B, so every one of them is doubled like `'`.
 */
export function quotePowerShell(value: string): string {
  return `'${value.replace(/['\u2018\u2019\u201A\u201B]/gu, (q) => q + q)}'`;
}

/**
 * The command line that runs `script` under Windows PowerShell via `-EncodedCommand` (base64 of UTF-16LE), so
 * no quoting of cmd.exe or of the SSH server's default shell applies to the script: the line holds only
 * `[A-Za-z0-9+/=]` beyond the fixed flags.
 */
export function powerShellCommand(script: string): string {
  const encoded = Buffer.from(script, 'utf16le').toString('base64');
  return `powershell.exe -NoLogo -NoProfile -NonInteractive -ExecutionPolicy Bypass -EncodedCommand ${encoded}`;
}

/** Hash algorithms the file tools offer. */
export type HashAlgorithm = 'sha256' | 'sha512' | 'md5';

/**
 * The PowerShell script that prints the lower-case hex digest of the file at `nativePath` (a path as
 * {@link PathPersonality.toNative} spells it) with `Get-FileHash -LiteralPath` (no wildcard expansion).
 */
export function powerShellHashScript(nativePath: string, algorithm: HashAlgorithm): string {
  const name = { sha256: 'SHA256', sha512: 'SHA512', md5: 'MD5' }[algorithm];
  return `$ErrorActionPreference = 'Stop'; (Get-FileHash -LiteralPath ${quotePowerShell(nativePath)} -Algorithm ${name}).Hash.ToLowerInvariant()`;
}
