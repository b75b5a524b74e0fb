// The lexical half of path confinement: the model's path, normalised, must lie under an allowed root and
// outside every restricted path. ssh/ adds the remote realpath/lstat half and calls these functions again
// on the resolved path.
import { posix } from 'node:path';

import { SshgateError } from '../errors.js';

/** The confinement rules of one host (`roots` and `restricted_paths` in the config). */
export interface PathRules {
  /** Absolute POSIX directories the path must lie in. Absent or empty: the whole file system. */
  roots?: readonly string[] | undefined;
  /** Absolute POSIX paths refused, with everything below them, even inside a root. */
  restricted_paths?: readonly string[] | undefined;
}

/**
 * The outcome of a path check. When allowed, `path` is the normalised path, which the caller must use from
 * then on. When refused, `rule` names the rule that fired (`empty`, `nul_byte`, `control_character`,
 * `absolute_path`, `roots`, `restricted_paths[i]` or `local_paths`) and `message` explains it to the model and
 * the operator.
 */
export type PathDecision =
  | { allowed: true; path: string }
  | { allowed: false; rule: string; path: string; message: string };

/** Who the rules belong to, so a message can name the config key to change. */
export interface PathContext {
  host?: string | undefined;
}

/** Paths longer than this are cut in messages: the model controls them and messages are echoed back. */
const MESSAGE_PATH_CHARS = 200;

/**
 * Normalises an absolute POSIX path lexically: `.` and empty segments drop, `..` pops a segment (and stays at
 * `/` when it would climb above it), a leading `//` becomes `/`, and a trailing slash is removed (except for `/`).
 * The result of an absolute path is absolute and contains no `.`, `..` or empty segment.
 */
function normalise(path: string): string {
  const normalised = posix.normalize(path);
  return normalised.length > 1 && normalised.endsWith('/') ? normalised.slice(0, -1) : normalised;
}

/**
 * True when `path` equals `root` or lies below it, comparing whole segments: `/srv/app2` and `/srv/app-evil` are
 * not under `/srv/app`, and everything absolute is under `/`. Both arguments are normalised first, so
 * `/srv/app/../etc` is not under `/srv/app`; a relative `path` is under nothing. Lexical only: it neither
 * rejects control characters (see {@link checkRemotePath}) nor knows about symlinks.
 */
export function isUnder(path: string, root: string): boolean {
  if (!path.startsWith('/')) return false;
  const p = normalise(path);
  const r = normalise(root);
  // Security: the '/' suffix is what keeps /srv/app2 out of /srv/app.
  return r === '/' || p === r || p.startsWith(`${r}/`);
}

/** The path as shown in messages: escaped (no raw control characters reach a terminal) and cut when long. */
function show(path: string): string {
  const cut = path.length > MESSAGE_PATH_CHARS ? `${path.slice(0, MESSAGE_PATH_CHARS)}…` : path;
  return JSON.stringify(cut).slice(1, -1);
}

function showList(paths: readonly string[]): string {
  return `[${paths.map(show).join(', ')}]`;
}

function deny(rule: string, path: string, message: string): PathDecision {
  return { allowed: false, rule, path, message };
}

/** The rules every path passes before normalisation, remote or local. */
function screen(path: string): PathDecision | undefined {
  if (path === '') return deny('empty', path, 'The path is empty; give an absolute path.');
  // Security: a NUL ends the string in C, so the remote side could act on a different path than the one checked.
  if (path.includes('\0')) {
    return deny('nul_byte', path, `The path "${show(path)}" contains a NUL byte, which no file name may contain.`);
  }
  // Security: control characters (C0, DEL, C1) have no place in a file name the model picks and can forge log lines.
  if (/\p{Cc}/u.test(path)) {
    return deny(
      'control_character',
      path,
      `The path "${show(path)}" contains a control character (such as a newline, tab or escape); these are refused.`,
    );
  }
  return undefined;
}

/**
 * Checks a remote (POSIX) path the model gave against a host's rules. In order:
 * 1. Non-empty, no NUL byte, no control character (U+0000–U+001F, U+007F–U+009F).
 * 2. Absolute (starts with `/`).
 * 3. Normalised lexically (see {@link isUnder}); `..` that would leave a root is caught by step 4.
 * 4. Equal to or below one of the normalised `roots` (segment-wise), when roots are given.
 * 5. Neither equal to nor below any of the normalised `restricted_paths`.
 *
 * Security: the remote operation must use the returned `path`, never the raw input: lexical `..` differs from
 * the kernel's when a segment is a symlink. Symlinks are ssh/'s job (realpath, then this check again).
 * Unicode is compared code point by code point, without normalisation, as the remote file system does.
 * The rules are expected to be absolute, as the config schema enforces; a relative root matches nothing.
 * Never throws.
 */
export function checkRemotePath(path: string, rules: PathRules, context: PathContext = {}): PathDecision {
  const screened = screen(path);
  if (screened !== undefined) return screened;
  if (!path.startsWith('/')) {
    return deny(
      'absolute_path',
      path,
      `The path "${show(path)}" is relative; remote paths must be absolute (start with "/").`,
    );
  }
  const normalised = normalise(path);
  const keyPrefix = context.host === undefined ? '' : `hosts.${context.host}.`;
  const ofHost = context.host === undefined ? '' : ` of host ${context.host}`;

  const roots = rules.roots ?? [];
  if (roots.length > 0 && !roots.some((root) => isUnder(normalised, root))) {
    return deny(
      'roots',
      normalised,
      `${show(normalised)} is outside the allowed roots ${showList(roots.map(normalise))}${ofHost} ` +
        `(config key ${keyPrefix}roots); use a path under one of them.`,
    );
  }

  for (const [i, carveOut] of (rules.restricted_paths ?? []).entries()) {
    if (isUnder(normalised, carveOut)) {
      return deny(
        `restricted_paths[${i}]`,
        normalised,
        `${show(normalised)} is inside the restricted path ${show(normalise(carveOut))}${ofHost} ` +
          `(config key ${keyPrefix}restricted_paths[${i}]); it may not be used, nor anything below it.`,
      );
    }
  }
  return { allowed: true, path: normalised };
}

/**
 * Returns the normalised path that {@link checkRemotePath} allows, for the remote operation to use.
 * @throws SshgateError `PATH_DENIED` whose message names the rule, the path and the allowed roots;
 *   `details` carries `{ rule, path }`.
 */
export function assertRemotePath(path: string, rules: PathRules, context: PathContext = {}): string {
  return orThrow(checkRemotePath(path, rules, context));
}

/**
 * Expands a leading `~` or `~/` with `home`. `~user` is left as is, and so is everything when `home` is not
 * absolute (an unset home must not turn `~/x` into `/x`): such paths then fail as relative.
 */
function expandHome(path: string, home: string): string {
  if (!home.startsWith('/')) return path;
  if (path === '~') return home;
  return path.startsWith('~/') ? `${home}${path.slice(1)}` : path;
}

/**
 * Checks a path on this machine (the local side of upload and download) against `local_paths`. In order:
 * 1. `local_paths` is not empty: an empty list refuses every path (rule `local_paths`).
 * 2. The checks of {@link checkRemotePath} step 1.
 * 3. After `~` expansion with `home`, absolute; then normalised.
 * 4. Equal to or below one of `localPaths`, each also `~`-expanded and normalised (rule `local_paths`).
 *
 * POSIX paths only. Security: as for remote paths, the caller must use the returned `path`, and must still
 * realpath it so that a symlink inside a local path cannot lead out of it. Never throws.
 */
export function checkLocalPath(path: string, localPaths: readonly string[], home: string): PathDecision {
  if (localPaths.length === 0) {
    return deny(
      'local_paths',
      path,
      'No local directory is allowed for upload or download: the operator must list the allowed directories ' +
        'in `local_paths` in the sshgate config (for example `local_paths: [~/deploy]`).',
    );
  }
  const screened = screen(path);
  if (screened !== undefined) return screened;
  const expanded = expandHome(path, home);
  if (!expanded.startsWith('/')) {
    return deny(
      'absolute_path',
      path,
      `The local path "${show(path)}" is relative; give an absolute path, or one starting with "~/".`,
    );
  }
  const normalised = normalise(expanded);
  const roots = localPaths.map((root) => expandHome(root, home));
  if (!roots.some((root) => isUnder(normalised, root))) {
    return deny(
      'local_paths',
      normalised,
      `The local path ${show(normalised)} is outside the allowed local directories ${showList(roots.map(normalise))} ` +
        '(config key local_paths); use a path under one of them.',
    );
  }
  return { allowed: true, path: normalised };
}

/**
 * Returns the normalised path that {@link checkLocalPath} allows.
 * @throws SshgateError `PATH_DENIED`, as {@link assertRemotePath}.
 */
export function assertLocalPath(path: string, localPaths: readonly string[], home: string): string {
  return orThrow(checkLocalPath(path, localPaths, home));
}

function orThrow(decision: PathDecision): string {
  if (decision.allowed) return decision.path;
  throw new SshgateError('PATH_DENIED', decision.message, {
    details: { rule: decision.rule, path: show(decision.path) },
  });
}
