// Runs commands and file operations as root through `sudo` on the host, feeding the password on stdin only
// (never argv, never the remote process list) and turning every way sudo refuses into a quick, clear error.
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { posix } from 'node:path';
import { SshgateError } from '../errors.js';
import type { ResolvedHost } from '../config/load.js';
import { checkRemotePath } from '../policy/path-policy.js';
import { shellQuote } from '../policy/shell-quote.js';
import { execCommand, randomToken, type ExecResult } from './exec.js';
import type { FacadeDeps } from './facade.js';
import { lexicalPath, pathRules } from './sftp.js';
import type { ReadOutcome } from './sftp.js';

/** How long `sudo_password_command` may run before the call fails. */
const PASSWORD_COMMAND_TIMEOUT_MS = 10_000;
/** Seconds the root-side `timeout` waits beyond the call's own timeout (a backstop: the call's timer fires first). */
const ROOT_TIMEOUT_SLACK_S = 5;

/** A part of a file read as root (the shape of ssh_read_file's output). */
export type SudoReadOutcome = ReadOutcome;

/** A file written as root: where, and its mode and owner afterwards. */
export interface SudoWriteOutcome {
  /** Real path written (a symlink at the requested path is followed, inside the roots). */
  path: string;
  bytes: number;
  /** sha256 of the content, verified on the temp file before the rename. */
  sha256: string;
  created: boolean;
  mode: number;
  uid: number;
  gid: number;
}

/** The root operations tools may use (see facade.ts). Every method honours the call's signal. */
export interface SudoFacade {
  /**
   * Runs `command` as root with `bash -c`, stdin closed, after `cd cwd` (as root). A non-zero exit is data.
   * @throws SshgateError SUDO_FAILED (sudo refused: wrong password, no password configured, TTY required,
   *   not a sudoer, sudo missing), COMMAND_TIMEOUT, CANCELLED, connection errors.
   */
  sudoExec(host: ResolvedHost, command: string, options: { cwd?: string; maxOutputBytes?: number; timeoutMs: number }): Promise<ExecResult>;
  /**
   * Reads a file as root, with the semantics of `ssh_read_file` (line or byte range, cap, sha256 of a whole read).
   * The path passes the lexical policy, then its real path (resolved by root) must pass it too.
   * @throws SshgateError PATH_DENIED, REMOTE_NOT_FOUND, INVALID_INPUT (directory, not a regular file, binary as
   *   utf8), SUDO_FAILED, REMOTE_FAILURE.
   */
  sudoReadFile(
    host: ResolvedHost,
    path: string,
    options: { startLine?: number; lineCount?: number; offset?: number; maxBytes: number; encoding: 'utf8' | 'base64' },
  ): Promise<SudoReadOutcome>;
  /**
   * Replaces or creates a file as root, atomically (temp file in the same directory, size and sha256 verified,
   * owner and mode of an existing file copied, then `mv -fT`); the temp file is removed on any failure.
   * @throws SshgateError PATH_DENIED, REMOTE_NOT_FOUND (parent missing), REMOTE_FAILURE (directory at the path,
   *   precondition or verification failed), SUDO_FAILED.
   */
  sudoWriteFile(host: ResolvedHost, path: string, data: Buffer, options: { mode?: number; expectedSha256?: string }): Promise<SudoWriteOutcome>;
}

/** Why sudo refused, as reported in `details.reason` of SUDO_FAILED. */
type SudoFailureReason = 'wrong_password' | 'password_required' | 'tty_required' | 'not_permitted' | 'not_installed' | 'password_unavailable' | 'other';

/**
 * Classifies what sudo printed (before our script could start) into a reason and a message for the model.
 * Pure. The patterns are sudo's English messages; anything else is `other`, with
 * sudo's own text in the message, so a localised sudo still gives a readable error.
 */
function classifySudoFailure(alias: string, user: string, exitCode: number | null, stderr: string): { reason: SudoFailureReason; message: string; hint?: string } {
  const text = stderr.trim();
  const quoted = text === '' ? '' : `: ${text.split('\n').slice(0, 4).join(' | ').slice(0, 400)}`;
  if (exitCode === 127 && /sudo: (command )?not found|sudo: No such file/iu.test(text)) {
    return { reason: 'not_installed', message: `${alias}: sudo is not installed on the host${quoted}` };
  }
  if (/must have a tty|terminal is required|no tty present/iu.test(text)) {
    return {
      reason: 'tty_required',
      message: `${alias}: sudo requires a terminal (sudoers "Defaults requiretty"); sshgate runs sudo without a TTY${quoted}`,
      hint: `An operator can add "Defaults:${user} !requiretty" to the host's sudoers.`,
    };
  }
  if (/incorrect password attempt|Sorry, try again|no password was provided|Authentication failure/iu.test(text)) {
    return {
      reason: 'wrong_password',
      message: `${alias}: sudo refused the configured password for ${user}${quoted}`,
      hint: `Check hosts.${alias}.sudo_password_env or sudo_password_command in the sshgate config.`,
    };
  }
  if (/a password is required/iu.test(text)) {
    return {
      reason: 'password_required',
      message: `${alias}: sudo needs a password for ${user}, and none is configured${quoted}`,
      hint: `An operator can set hosts.${alias}.sudo_password_env or sudo_password_command in the sshgate config.`,
    };
  }
  if (/not in the sudoers file|is not allowed to (execute|run)|may not run sudo|not allowed to run sudo/iu.test(text)) {
    return { reason: 'not_permitted', message: `${alias}: ${user} may not run this as root with sudo${quoted}`, hint: 'The sudo tools need a sudoers rule that lets the account run bash as root.' };
  }
  return { reason: 'other', message: `${alias}: sudo failed (exit ${exitCode ?? 'none'})${quoted}` };
}

/**
 * Gets the host's sudo password: `sudo_password_env` from the process environment, or the first line of the
 * output of `sudo_password_command` (run with execFile: no shell, stdin closed, a short timeout). Returns null
 * when neither is configured (passwordless sudo, `sudo -n`).
 * Security: the value never goes to argv or logs; it is handed to `addSecret` for redaction before use.
 * @throws SshgateError SUDO_FAILED (reason password_unavailable).
 */
async function sudoPassword(host: ResolvedHost, signal: AbortSignal, addSecret?: (value: string) => void): Promise<string | null> {
  let password: string;
  if (host.sudoPasswordEnv !== null) {
    const value = process.env[host.sudoPasswordEnv];
    if (value === undefined || value === '') throw unavailable(host, `environment variable ${host.sudoPasswordEnv} (hosts.${host.alias}.sudo_password_env) is not set`);
    password = value;
  } else if (host.sudoPasswordCommand !== null) {
    password = await runPasswordCommand(host, host.sudoPasswordCommand, signal);
  } else {
    return null;
  }
  // Security: a line break would end the password early and feed the rest to sudo as another attempt.
  if (/[\r\n\0]/u.test(password)) throw unavailable(host, 'the sudo password contains a line break or NUL, which sudo -S cannot read');
  addSecret?.(password);
  return password;
}

function unavailable(host: ResolvedHost, why: string): SshgateError {
  return new SshgateError('SUDO_FAILED', `${host.alias}: no sudo password: ${why}`, { details: { reason: 'password_unavailable' } });
}

function runPasswordCommand(host: ResolvedHost, argv: readonly string[], signal: AbortSignal): Promise<string> {
  const [file, ...args] = argv;
  if (file === undefined) return Promise.reject(unavailable(host, 'sudo_password_command is empty'));
  return new Promise<string>((resolve, reject) => {
    const child = execFile(file, args, { timeout: PASSWORD_COMMAND_TIMEOUT_MS, maxBuffer: 64 * 1024, encoding: 'utf8', signal, windowsHide: true }, (err, stdout, stderr) => {
      if (err !== null) {
        // execFile's error: `code` is the exit status (number) or a spawn errno name (string).
        const { code, killed } = err as { code?: unknown; killed?: boolean };
        const status = typeof code === 'number' ? `exit ${code}` : typeof code === 'string' ? code : err.message;
        const why =
          code === 'ENOENT'
            ? `sudo_password_command ${JSON.stringify(file)} was not found`
            : killed === true
              ? `sudo_password_command did not finish within ${PASSWORD_COMMAND_TIMEOUT_MS / 1000} s`
              : `sudo_password_command failed (${status})${stderr.trim() === '' ? '' : `: ${stderr.trim().slice(0, 200)}`}`;
        reject(unavailable(host, why));
        return;
      }
      // The first line, as `pass show` prints the password there and metadata below it.
      const first = stdout.split(/\r?\n/u)[0] ?? '';
      if (first === '') reject(unavailable(host, 'sudo_password_command printed nothing'));
      else resolve(first);
    });
    child.stdin?.end();
  });
}

// The root-side scripts. Each runs as `sudo ... -- bash -c SCRIPT sshgate-sudo TOKEN ARGS...`: it first prints
// the call's ready marker on stderr (proof that sudo accepted us; everything before it is sudo's own text),
// then does its work. Paths and values are positional parameters, never spliced into the script text.
const PRELUDE = `printf '\\036sshgate-sudo:%s\\036' "$1" >&2; shift\n`;

/** $1 command, $2 cwd ('' for none), $3 seconds for the root-side timeout. */
const EXEC_SCRIPT = [
  // Security: with NOPASSWD sudo never reads stdin, so the password line would reach the command: drop stdin.
  'exec </dev/null',
  'if [ -n "$2" ]; then cd -- "$2" || exit 126; fi',
  // We cannot signal a root process from the login account; sudo relays our SIGTERM, and timeout bounds it anyway.
  'if command -v timeout >/dev/null 2>&1; then exec timeout -k 2 "$3" bash -c -- "$1"; fi',
  'exec bash -c -- "$1"',
].join('\n');

/** $1 path. Prints NUL-separated: real path, kind (file|directory|other), size; or just `missing`. */
const RESOLVE_READ_SCRIPT = [
  'exec </dev/null',
  `if ! [ -e "$1" ]; then printf 'missing\\0'; exit 0; fi`,
  'r=$(realpath -e -- "$1" && printf x) || exit 43',
  'r=${r%?x}',
  'if [ -d "$r" ]; then k=directory; elif [ -f "$r" ]; then k=file; else k=other; fi',
  `printf '%s\\0' "$r" "$k" "$(stat -c %s -- "$r" 2>/dev/null || echo 0)"`,
].join('\n');

/**
 * $1 real path, $2 whole|bytes|lines, $3 first byte (1-based) or first line, $4 line count, $5 byte cap.
 * Prints the bytes in base64. Refuses anything but a regular file whose real path is still $1.
 */
const READ_SCRIPT = [
  'exec </dev/null',
  'set -o pipefail',
  '[ -f "$1" ] || exit 42',
  'exec 3< "$1" || exit 43',
  // Security: what was opened must still be the checked real path (a symlink swapped in meanwhile is caught);
  // /proc names the opened file itself, so no window is left where /proc exists.
  'if [ -e "/proc/$$/fd/3" ]; then r=$(readlink -- "/proc/$$/fd/3" && printf x); else r=$(realpath -e -- "$1" && printf x); fi',
  '[ "${r%?x}" = "$1" ] || exit 41',
  'case $2 in',
  '  whole) head -c "$5" <&3 ;;',
  '  bytes) tail -c +"$3" <&3 | head -c "$5" ;;',
  '  lines) tail -n +"$3" <&3 | head -n "$4" | head -c "$5" ;;',
  'esac | base64',
  // 141: tail or head stopped early by SIGPIPE after the cap, which is expected.
  's=$?; [ "$s" = 0 ] || [ "$s" = 141 ] || exit 43',
].join('\n');

/**
 * $1 lexical parent directory, $2 final component. Prints NUL-separated: real parent, target in it, link state
 * (none|symlink|dangling), symlink's real target ('' unless symlink), kind of what will be replaced
 * (missing|file|directory|other).
 */
const RESOLVE_WRITE_SCRIPT = [
  'exec </dev/null',
  'd=$(realpath -e -- "$1" && printf x) || exit 20',
  'd=${d%?x}',
  '[ -d "$d" ] || exit 21',
  't=${d%/}/$2',
  `if [ -L "$t" ]; then`,
  `  if r=$(realpath -e -- "$t" && printf x); then r=\${r%?x}; l=symlink; else r=; l=dangling; fi`,
  'else r=; l=none; fi',
  'x=${r:-$t}',
  'if [ -d "$x" ]; then k=directory; elif [ -f "$x" ]; then k=file; elif [ -e "$x" ]; then k=other; else k=missing; fi',
  `printf '%s\\0' "$d" "$t" "$l" "$r" "$k"`,
].join('\n');

/**
 * $1 real target, $2 its real directory, $3 stdin sentinel, $4 size, $5 sha256, $6 mode ('' keeps the old one,
 * 644 for a new file), $7 expected sha256 of the current file ('' for none). stdin: [password line, if sudo did
 * not read it], sentinel line, content. Prints NUL-separated: created (1|0), mode:uid:gid after the write.
 */
const WRITE_SCRIPT = [
  // With NOPASSWD, sudo leaves the password line unread: skip lines up to our sentinel (at most two).
  'IFS= read -r l || exit 40',
  'if [ "$l" != "$3" ]; then IFS= read -r l || exit 40; [ "$l" = "$3" ] || exit 40; fi',
  'l=',
  // Security: work inside the directory, by relative names, once its real path is confirmed: a directory above
  // it swapped for a symlink after this point cannot redirect the write.
  'cd -P -- "$2" && [ "$(pwd -P)" = "$2" ] || exit 41',
  't=./${1##*/}',
  '[ -L "$t" ] && exit 41',
  '[ -d "$t" ] && exit 42',
  'if [ -e "$t" ] && ! [ -f "$t" ]; then exit 42; fi',
  'if [ -n "$7" ]; then',
  `  if [ -f "$t" ]; then c=$(sha256sum < "$t") || exit 43; c=\${c%% *}; else c=none; fi`,
  `  [ "$c" = "$7" ] || { printf '%s\\0' "$c"; exit 46; }`,
  'fi',
  'tmp=$(mktemp -- "./.${1##*/}.sshgate-XXXXXXXX") || exit 43',
  `trap 'rm -f -- "$tmp"' EXIT`,
  'cat > "$tmp" || exit 43',
  `s=$(stat -c %s -- "$tmp") && [ "$s" = "$4" ] || { printf '%s\\0' "$s"; exit 44; }`,
  'c=$(sha256sum < "$tmp") && [ "${c%% *}" = "$5" ] || exit 44',
  'created=1; m=644',
  // chown before chmod: chown clears setuid/setgid bits.
  'if [ -f "$t" ]; then created=0; m=$(stat -c %a -- "$t") && chown -- "$(stat -c %u:%g -- "$t")" "$tmp" || exit 45; fi',
  'if [ -n "$6" ]; then m=$6; fi',
  'chmod -- "$m" "$tmp" || exit 45',
  // -T: never move the temp file into a directory that appeared at the path.
  'mv -fT -- "$tmp" "$t" || exit 45',
  'trap - EXIT',
  `printf '%s\\0' "$created" "$(stat -c %a:%u:%g -- "$t")"`,
].join('\n');

/** One sudo run: the command line for the login shell and the bytes for its stdin. */
interface SudoRun {
  host: ResolvedHost;
  script: string;
  args: readonly string[];
  /** Bytes after the password line (the write script's sentinel and content). */
  stdin?: Buffer;
  maxOutputBytes: number;
}

/** Creates the sudo operations for one call. */
export function createSudoFacade(deps: FacadeDeps): SudoFacade {
  const { pool, signal } = deps;
  const hashLimitBytes = deps.limits.max_write_bytes;

  /**
   * Runs a script as root and returns its result with sudo's own output removed.
   * Protocol: stdin carries the password line once (only when one is configured: `sudo -k -S -p ''`; else
   * `sudo -k -n`), then `run.stdin`, then EOF. With a wrong password sudo's second attempt reads EOF, so it
   * fails at once instead of waiting (a write sends content only after its resolve step proved the password:
   * otherwise sudo would try the content's lines as passwords). `-k` ignores and never leaves cached
   * credentials, so no later plain `sudo -n` rides on ours. Whether sudo ran is told by the ready marker, not
   * by sudo's (localised) messages, which only choose the wording of SUDO_FAILED.
   */
  async function runSudo(run: SudoRun): Promise<ExecResult> {
    const password = await sudoPassword(run.host, signal, deps.addSecret);
    const token = randomToken(8);
    const marker = `\u001esshgate-sudo:${token}\u001e`;
    const sudo = password === null ? 'sudo -k -n' : "sudo -k -S -p ''";
    const line = `${sudo} -- bash -c ${shellQuote(PRELUDE + run.script)} sshgate-sudo ${[token, ...run.args].map(shellQuote).join(' ')}`;
    const parts = [password === null ? Buffer.alloc(0) : Buffer.from(`${password}\n`), run.stdin ?? Buffer.alloc(0)];
    const result = await execCommand(pool, run.host, line, { stdin: Buffer.concat(parts), maxOutputBytes: run.maxOutputBytes, signal });
    const at = result.stderr.indexOf(marker);
    if (at === -1) {
      const failure = classifySudoFailure(run.host.alias, run.host.user, result.exit_code, result.stderr);
      throw new SshgateError('SUDO_FAILED', failure.message, {
        ...(failure.hint === undefined ? {} : { hint: failure.hint }),
        details: { reason: failure.reason, exit_code: result.exit_code, sudo_stderr: result.stderr.slice(0, 2000) },
      });
    }
    const dropped = Buffer.byteLength(result.stderr.slice(0, at + marker.length));
    return { ...result, stderr: result.stderr.slice(at + marker.length), stderr_bytes: Math.max(0, result.stderr_bytes - dropped) };
  }

  /** Runs one of our own scripts; an exit status other than 0 becomes an error from `errors`. */
  async function runScript(run: SudoRun, what: string, errors: Record<number, (fields: string[], stderr: string) => SshgateError>): Promise<string[]> {
    const result = await runSudo(run);
    const fields = result.stdout.split('\0');
    if (result.exit_code !== 0) {
      const make = result.exit_code === null ? undefined : errors[result.exit_code];
      if (make !== undefined) throw make(fields, result.stderr.trim());
      throw new SshgateError('REMOTE_FAILURE', `${run.host.alias}: ${what} failed as root (exit ${result.exit_code ?? result.signal ?? 'none'})${result.stderr.trim() === '' ? '' : `: ${result.stderr.trim().slice(0, 400)}`}`);
    }
    if (result.truncated) throw new SshgateError('REMOTE_FAILURE', `${run.host.alias}: ${what}: the output was larger than expected`);
    return fields;
  }

  function checkReal(host: ResolvedHost, requested: string, real: string): void {
    const decision = checkRemotePath(real, pathRules(host));
    if (!decision.allowed) throw new SshgateError('PATH_DENIED', `${host.alias}: ${requested} resolves to ${real}: ${decision.message}`, { details: { rule: decision.rule } });
  }

  const failed = (host: ResolvedHost, message: string) => (_f: string[], stderr: string) =>
    new SshgateError('REMOTE_FAILURE', `${host.alias}: ${message}${stderr === '' ? '' : `: ${stderr.slice(0, 400)}`}`);
  const changed = (host: ResolvedHost, path: string) => () =>
    new SshgateError('PATH_DENIED', `${host.alias}: ${path} changed while it was being used (a directory or the file was replaced by a symlink); nothing was done`);

  async function readBytes(host: ResolvedHost, real: string, how: 'whole' | 'bytes' | 'lines', a: number, b: number, cap: number): Promise<Buffer> {
    const base64Bytes = Math.ceil(cap / 3) * 4;
    const fields = await runScript(
      { host, script: READ_SCRIPT, args: [real, how, String(a), String(b), String(cap)], maxOutputBytes: base64Bytes + Math.ceil(base64Bytes / 76) + 4096 },
      `reading ${real}`,
      {
        41: changed(host, real),
        42: () => new SshgateError('INVALID_INPUT', `${host.alias}: ${real} is not a regular file`),
        43: failed(host, `could not read ${real}`),
      },
    );
    return Buffer.from(fields.join(''), 'base64');
  }

  return {
    async sudoExec(host, command, options) {
      const seconds = Math.ceil(options.timeoutMs / 1000) + ROOT_TIMEOUT_SLACK_S;
      return runSudo({
        host,
        script: EXEC_SCRIPT,
        args: [command, options.cwd ?? '', `${seconds}s`],
        maxOutputBytes: options.maxOutputBytes ?? deps.limits.max_output_bytes,
      });
    },

    async sudoReadFile(host, path, options) {
      const lexical = lexicalPath(host, path);
      const [real = '', kind, sizeText] = await runScript({ host, script: RESOLVE_READ_SCRIPT, args: [lexical], maxOutputBytes: 64 * 1024 }, `resolving ${lexical}`, {
        43: failed(host, `could not resolve ${lexical}`),
      });
      if (real === 'missing') throw new SshgateError('REMOTE_NOT_FOUND', `${host.alias}: ${lexical}: no such file or directory`);
      checkReal(host, lexical, real);
      if (kind === 'directory') throw new SshgateError('INVALID_INPUT', `${real} is a directory; use ssh_list_directory`);
      if (kind !== 'file') throw new SshgateError('INVALID_INPUT', `${host.alias}: ${real} is not a regular file`);
      const statSize = Number(sizeText ?? '0');

      const byteMode = options.startLine === undefined && options.lineCount === undefined;
      const start = byteMode ? (options.offset ?? 0) : 0;
      const firstLine = options.startLine ?? 1;
      let slice: Sliced;
      let size = statSize;
      let sha256: string | null = null;
      if (start === 0 && statSize <= hashLimitBytes) {
        // Small enough to read whole: the sha256 can be given, and the slicing happens here.
        const data = await readBytes(host, real, 'whole', 0, 0, hashLimitBytes + 1);
        // More than the limit: the file grew since it was measured; what was read is cut and has no digest.
        const content = data.length <= hashLimitBytes ? data : data.subarray(0, hashLimitBytes);
        if (content === data) {
          sha256 = createHash('sha256').update(data).digest('hex');
          size = Math.max(statSize, data.length);
        }
        slice = byteMode ? sliceBytes(content, 0, options.maxBytes, content !== data) : sliceLines(content, firstLine, options.lineCount, options.maxBytes, 1);
      } else if (byteMode) {
        // tail -c counts from 1; one byte past the cap tells whether there is more.
        const data = await readBytes(host, real, 'bytes', start + 1, 0, options.maxBytes + 1);
        slice = sliceBytes(data, start, options.maxBytes, false);
      } else {
        const data = await readBytes(host, real, 'lines', firstLine, options.lineCount ?? Number.MAX_SAFE_INTEGER, options.maxBytes + 1);
        slice = sliceLines(data, 1, options.lineCount, options.maxBytes, firstLine);
      }
      if (options.encoding === 'utf8' && slice.content.subarray(0, 8192).includes(0)) {
        throw new SshgateError('INVALID_INPUT', `${real} looks binary (it contains NUL bytes); read it with encoding: "base64"`);
      }
      return {
        path: real,
        size,
        content: options.encoding === 'base64' ? slice.content.toString('base64') : slice.content.toString('utf8'),
        encoding: options.encoding,
        bytes: slice.content.length,
        truncated: slice.truncated,
        start_line: byteMode ? null : firstLine,
        end_line: slice.endLine,
        sha256,
        next_offset: slice.nextOffset,
      };
    },

    async sudoWriteFile(host, path, data, options) {
      const lexical = lexicalPath(host, path);
      if (lexical === '/') throw new SshgateError('INVALID_INPUT', 'path: / is a directory');
      const parent = posix.dirname(lexical);
      const [dir = '', joined = '', link, linkReal = '', kind] = await runScript(
        { host, script: RESOLVE_WRITE_SCRIPT, args: [parent, posix.basename(lexical)], maxOutputBytes: 64 * 1024 },
        `resolving ${lexical}`,
        {
          20: () => new SshgateError('REMOTE_NOT_FOUND', `${host.alias}: ${parent}: no such directory (create it first)`),
          21: () => new SshgateError('REMOTE_FAILURE', `${host.alias}: ${parent} is not a directory`),
        },
      );
      checkReal(host, parent, dir);
      if (link === 'dangling') throw new SshgateError('REMOTE_NOT_FOUND', `${host.alias}: ${lexical} is a symlink to a missing file`);
      let target = joined;
      if (link === 'symlink') {
        checkReal(host, lexical, linkReal);
        target = linkReal;
      }
      if (kind === 'directory') throw new SshgateError('REMOTE_FAILURE', `${lexical} is a directory`);
      if (kind === 'other') throw new SshgateError('REMOTE_FAILURE', `${host.alias}: ${lexical} is not a regular file; it was not replaced`);

      const sentinel = `sshgate-content:${randomToken(8)}`;
      const sha256 = createHash('sha256').update(data).digest('hex');
      const mode = options.mode === undefined ? '' : (options.mode & 0o7777).toString(8);
      const [created, after = ''] = await runScript(
        {
          host,
          script: WRITE_SCRIPT,
          args: [target, posix.dirname(target), sentinel, String(data.length), sha256, mode, options.expectedSha256?.toLowerCase() ?? ''],
          stdin: Buffer.concat([Buffer.from(`${sentinel}\n`), data]),
          maxOutputBytes: 64 * 1024,
        },
        `writing ${target}`,
        {
          40: failed(host, `the content of ${target} did not arrive as expected; the file was not replaced`),
          41: changed(host, target),
          42: () => new SshgateError('REMOTE_FAILURE', `${host.alias}: ${target} is now a directory or not a regular file; it was not replaced`),
          43: failed(host, `could not write a temporary file next to ${target}; the file was not replaced`),
          44: (fields) =>
            new SshgateError('REMOTE_FAILURE', `short write to ${target}: ${fields[0] ?? '?'} of ${data.length} bytes reached the disk, or the sha256 differs (disk full?); the file was not replaced`),
          45: failed(host, `could not set owner and mode of, or rename, the new ${target}; the file was not replaced`),
          46: (fields) =>
            new SshgateError('REMOTE_FAILURE', `${path} changed since it was read: expected sha256 ${options.expectedSha256 ?? ''}, found ${fields[0] === 'none' ? 'no file' : (fields[0] ?? '?')}; read it again before writing`, {
              details: { current_sha256: fields[0] === 'none' ? null : (fields[0] ?? null) },
            }),
        },
      );
      const [modeText = '', uid, gid] = after.split(':');
      return { path: target, bytes: data.length, sha256, created: created === '1', mode: parseInt(modeText, 8), uid: Number(uid), gid: Number(gid) };
    },
  };
}

/** A part of a file cut to the request. */
interface Sliced {
  content: Buffer;
  truncated: boolean;
  endLine: number | null;
  nextOffset: number | null;
}

/**
 * Up to `maxBytes` of `data`, which holds the file from offset `dataStart`; `isCut` says the data stopped
 * before the end of the file (so keeping all of it is still a truncation).
 */
function sliceBytes(data: Buffer, dataStart: number, maxBytes: number, isCut: boolean): Sliced {
  const content = data.subarray(0, maxBytes);
  const truncated = data.length > content.length || isCut;
  return { content, truncated, endLine: null, nextOffset: truncated ? dataStart + content.length : null };
}

/**
 * Lines `firstLine` .. `firstLine + lineCount - 1` of `data` (whose first line is file line `lineBase`), whole
 * lines only, at most `maxBytes` (a final line without a newline counts as a line), as ssh_read_file does.
 */
function sliceLines(data: Buffer, firstLine: number, lineCount: number | undefined, maxBytes: number, lineBase: number): Sliced {
  const lastLine = lineCount === undefined ? Number.POSITIVE_INFINITY : firstLine + lineCount - 1;
  const kept: Buffer[] = [];
  let keptBytes = 0;
  let truncated = false;
  let endLine = 0;
  let line = 1;
  let from = 0;
  while (from < data.length && line <= lastLine) {
    const nl = data.indexOf(0x0a, from);
    const end = nl === -1 ? data.length : nl + 1;
    if (line >= firstLine) {
      if (keptBytes + (end - from) > maxBytes) {
        truncated = true;
        break;
      }
      kept.push(data.subarray(from, end));
      keptBytes += end - from;
      endLine = line;
    }
    line += 1;
    from = end;
  }
  return { content: Buffer.concat(kept), truncated, endLine: endLine === 0 ? null : endLine + lineBase - 1, nextOffset: null };
}
