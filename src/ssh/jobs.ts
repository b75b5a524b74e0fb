// Background jobs that survive a dropped connection: detached on the host with pid, log and exit files.
//
// Remote layout, one directory per job under the job directory (`jobs.dir`, default `~/.sshgate/jobs`, 0700):
//   <dir>/<job_id>/command    the command text, exactly as the command policy saw it (0600)
//   <dir>/<job_id>/started    start time, epoch seconds with a fraction
//   <dir>/<job_id>/pid        "<pid> <kernel start time>" of the runner, the session and process-group leader
//   <dir>/<job_id>/log        stdout and stderr of the command, capped at `jobs.max_log_bytes`
//   <dir>/<job_id>/exit       "<exit status> <end time>", written (atomically) when the command ends
//   <dir>/<job_id>/cancelled  the time ssh_cancel_job signalled the job
// A job is `exited` with an exit file, `killed` when it was cancelled, `running` while its runner lives, and
// `lost` when the runner is gone without an exit file (killed from outside, or the host rebooted).
import { randomBytes } from 'node:crypto';
import { posix } from 'node:path';
import { SshgateError, invalidInput } from '../errors.js';
import { shellQuote } from '../policy/shell-quote.js';
import type { ResolvedHost } from '../config/load.js';
import type { Config } from '../config/schema.js';
import { execCommand } from './exec.js';
import type { FacadeDeps } from './facade.js';

/** Job ids: 12 hex digits of the start time in ms (so names sort by age), then 64 random bits. */
export const JOB_ID_PATTERN = /^[0-9a-f]{28}$/u;

/** The states a job can be in. */
export const JOB_STATES = ['running', 'exited', 'killed', 'lost'] as const;
export type JobState = (typeof JOB_STATES)[number];

/** Signals ssh_cancel_job may send first (SIGKILL follows after the grace period). */
export const CANCEL_SIGNALS = ['TERM', 'INT', 'HUP', 'KILL'] as const;
export type CancelSignal = (typeof CANCEL_SIGNALS)[number];

/** Bytes of the command text shown by ssh_get_job and ssh_list_jobs. */
const GET_COMMAND_BYTES = 4096;
const LIST_COMMAND_BYTES = 200;

/** A new job id: unguessable (64 random bits) and safe as a path component. */
export function newJobId(now = Date.now()): string {
  return now.toString(16).padStart(12, '0').slice(-12) + randomBytes(8).toString('hex');
}

/**
 * Returns `id` when it is a well-formed job id.
 * Security: the model passes job ids back, and they become a path component on the host; anything but the
 * fixed hex form (`../../etc`, `/`, quotes) is refused before a script is built.
 * @throws SshgateError INVALID_INPUT otherwise.
 */
export function assertJobId(id: string): string {
  if (!JOB_ID_PATTERN.test(id)) throw invalidInput(`job_id ${JSON.stringify(id.slice(0, 80))} is not a job id (28 hex digits, as returned by ssh_start_job)`);
  return id;
}

/** What the host reports about one job. */
export interface JobRecord {
  job_id: string;
  state: JobState;
  /** Pid of the job's runner, which leads the job's session and process group. */
  pid: number | null;
  /** Exit status once the command ended (128+N: ended by signal N); null while running or when lost. */
  exit_code: number | null;
  started_at: string | null;
  ended_at: string | null;
  /** Time from start to end (or to now while running), by the host's clock; null when unknown. */
  runtime_ms: number | null;
  /** The command text (the first bytes of it in listings: see `command_truncated`). */
  command: string;
  command_truncated: boolean;
  /** Bytes in the job's log on the host. */
  log_bytes: number;
  /** True when the log reached `jobs.max_log_bytes` and later output was dropped on the host. */
  log_capped: boolean;
}

/** A slice of a job's log. */
export interface JobOutput {
  output: string;
  /** Byte offset of `output` in the log. */
  output_offset: number;
  /** Bytes of the log returned. */
  output_bytes: number;
  /** Offset just past `output`: pass it as `offset` to read on (also to follow a running job). */
  next_offset: number;
  /** More of the log exists past `next_offset` right now. */
  has_more: boolean;
}

/** Which part of the log to return: the last `tailBytes`, or `limit` bytes from `offset`. */
export type JobLogRead = { tailBytes: number } | { offset: number; limit: number };

/** Result of {@link JobsFacade.startJob}. */
export interface JobStarted {
  job_id: string;
  pid: number;
  started_at: string;
  /** The job's directory on the host. */
  dir: string;
}

/** Result of {@link JobsFacade.cancelJob}: the job after the signals, and which were sent. */
export interface JobCancelled extends JobRecord {
  /** The first signal was sent (false: the job had already ended). */
  signalled: boolean;
  /** SIGKILL had to follow because the group outlived the grace period. */
  escalated: boolean;
}

/** The jobs operations tools may use (see facade.ts). Every method honours the call's signal. */
export interface JobsFacade {
  /**
   * Starts `command` detached on the host, in its own session, and returns once its pid is known.
   * @throws SshgateError INVALID_INPUT (NUL bytes, bad env names), REMOTE_FAILURE (cannot create the job
   *   directory, cannot enter cwd, no setsid on the host), or connection errors.
   */
  startJob(host: ResolvedHost, command: string, options: { cwd?: string; env?: Record<string, string> }): Promise<JobStarted>;
  /**
   * State of a job and a slice of its log.
   * @throws SshgateError INVALID_INPUT for a malformed id, REMOTE_NOT_FOUND when the host has no such job.
   */
  getJob(host: ResolvedHost, jobId: string, read: JobLogRead): Promise<JobRecord & JobOutput>;
  /**
   * Signals the job's process group with `signal`, then SIGKILL once `graceMs` passed, and reports the final state.
   * A job that already ended is reported as it is.
   * @throws SshgateError INVALID_INPUT for a malformed id, REMOTE_NOT_FOUND when the host has no such job.
   */
  cancelJob(host: ResolvedHost, jobId: string, options: { signal: CancelSignal; graceMs: number }): Promise<JobCancelled>;
  /** The host's newest `limit` jobs, newest first, and how many there are in all. */
  listJobs(host: ResolvedHost, options: { limit: number }): Promise<{ jobs: JobRecord[]; total: number }>;
}

/** Creates the jobs operations for one call. */
export function createJobsFacade(deps: FacadeDeps): JobsFacade {
  const settings = deps.jobs;
  const run = async (host: ResolvedHost, script: string, maxOutputBytes: number, stdin?: string): Promise<string> => {
    const result = await execCommand(deps.pool, host, script, {
      maxOutputBytes,
      signal: deps.signal,
      exitGraceMs: 100,
      ...(stdin === undefined ? {} : { stdin }),
    });
    if (result.truncated) throw new SshgateError('REMOTE_FAILURE', `${host.alias}: the job report was larger than expected and was cut; try a smaller limit`);
    if (result.exit_code !== 0) {
      const reason = /^@error (.*)$/mu.exec(result.stdout)?.[1] ?? result.stderr.trim().slice(-500);
      throw new SshgateError('REMOTE_FAILURE', `${host.alias}: ${reason === '' ? `the job script failed (exit ${result.exit_code ?? result.signal ?? '?'})` : reason}`);
    }
    return result.stdout;
  };
  const notFound = (host: ResolvedHost, jobId: string): SshgateError =>
    new SshgateError('REMOTE_NOT_FOUND', `${host.alias}: there is no job ${jobId} in the job directory ${settings.dir}`, {
      hint: 'ssh_list_jobs lists the jobs on a host; job ids are per host.',
    });

  return {
    async startJob(host, command, options) {
      if (command.includes('\0')) throw invalidInput('command: NUL bytes cannot be passed to a shell');
      const env = Object.entries(options.env ?? {});
      for (const [name, value] of env) {
        if (!/^[A-Za-z_][A-Za-z0-9_]*$/u.test(name)) throw invalidInput(`env: ${JSON.stringify(name)} is not a valid variable name`);
        if (value.includes('\0')) throw invalidInput(`env: the value of ${name} contains a NUL byte`);
      }
      if (options.cwd?.includes('\0') === true) throw invalidInput('cwd: NUL bytes are not allowed in paths');
      const jobId = newJobId();
      const out = await run(host, startScript(settings, jobId, options.cwd, env), 64 * 1024, command);
      const match = /^@started (\d+) (\S+) (.+)$/mu.exec(out);
      const started = match === null ? null : parseEpochMs(match[2] ?? '');
      if (match === null || started === null) throw new SshgateError('REMOTE_FAILURE', `${host.alias}: the job was started but its pid could not be read`);
      return { job_id: jobId, pid: Number(match[1]), started_at: new Date(started).toISOString(), dir: match[3] ?? '' };
    },

    async getJob(host, jobId, read) {
      assertJobId(jobId);
      const wanted = 'tailBytes' in read ? read.tailBytes : read.limit;
      const out = await run(host, getScript(settings, jobId, read), wanted + 2 * GET_COMMAND_BYTES + 64 * 1024);
      const report = parseReport(out, settings.max_log_bytes);
      const job = report.jobs[0];
      if (job === undefined || report.log === null) throw notFound(host, jobId);
      const log = report.log;
      const end = log.offset + log.length;
      return { ...job, output: log.text, output_offset: log.offset, output_bytes: log.length, next_offset: end, has_more: end < log.size };
    },

    async cancelJob(host, jobId, options) {
      assertJobId(jobId);
      if (!CANCEL_SIGNALS.includes(options.signal)) throw invalidInput(`signal must be one of ${CANCEL_SIGNALS.join(', ')}`);
      const out = await run(host, cancelScript(settings, jobId, options.signal, options.graceMs), 2 * GET_COMMAND_BYTES + 64 * 1024);
      const job = parseReport(out, settings.max_log_bytes).jobs[0];
      if (job === undefined) throw notFound(host, jobId);
      return { ...job, signalled: /^@signalled$/mu.test(out), escalated: /^@escalated$/mu.test(out) };
    },

    async listJobs(host, options) {
      const limit = Math.max(1, Math.floor(options.limit));
      const out = await run(host, listScript(settings, limit), 64 * 1024 + limit * (2 * LIST_COMMAND_BYTES + 1024));
      const report = parseReport(out, settings.max_log_bytes);
      return { jobs: report.jobs.reverse(), total: report.total ?? report.jobs.length };
    },
  };
}

// ---- remote scripts ---------------------------------------------------------------------------------------
// Every script is fixed text plus values that are either validated numbers or shellQuote'd words. The model's
// command never appears in a script: it travels on stdin into the job's command file, and the runner gives
// that file's text to `bash -c` as one argument, as ssh_exec does.

/** The shell expression of the job directory: absolute as configured, or under the remote $HOME. */
function baseExpression(dir: string): string {
  const trimmed = dir.startsWith('~/') ? dir.slice(2) : dir === '~' ? '.' : dir;
  const normal = posix.normalize(trimmed).replace(/\/+$/u, '') || '/';
  return normal.startsWith('/') ? shellQuote(normal) : `"$HOME"/${shellQuote(normal)}`;
}

/** `start_token PID`: the kernel start time of a process (field 22 of /proc/PID/stat), or nothing without /proc. */
const START_TOKEN = [
  'start_token() {',
  '  local s f',
  '  [ -r "/proc/$1/stat" ] || return 0',
  '  read -r s 2>/dev/null < "/proc/$1/stat" || return 0',
  '  s=${s##*) }',
  '  read -ra f <<< "$s"',
  '  printf "%s" "${f[19]}"',
  '}',
].join('\n');

/**
 * Shell functions shared by the reading scripts (bash), then the host's clock.
 * - `alive PID TOKEN`: the process lives (not a zombie) and, where /proc exists, started at TOKEN (so a
 *   reused pid is not mistaken for the job).
 * - `group_alive PGID`: a live (non-zombie) process is left in the group.
 * - `report DIR CMDBYTES`: one record of facts about a job; the state is derived from them in TypeScript.
 */
const PRELUDE = [
  'alive() {',
  '  local s f',
  '  case $1 in ""|*[!0-9]*) return 1;; esac',
  '  if [ -d /proc/self ]; then',
  '    read -r s 2>/dev/null < "/proc/$1/stat" || return 1',
  '    s=${s##*) }',
  '    read -ra f <<< "$s"',
  '    case ${f[0]} in Z|X|x) return 1;; esac',
  '    [ -z "$2" ] || [ "${f[19]}" = "$2" ]',
  '  else',
  '    kill -0 "$1" 2>/dev/null',
  '  fi',
  '}',
  'group_alive() {',
  '  local p s f',
  '  if [ -d /proc/self ]; then',
  '    for p in /proc/[0-9]*/stat; do',
  '      read -r s 2>/dev/null < "$p" || continue',
  '      s=${s##*) }',
  '      read -ra f <<< "$s"',
  '      if [ "${f[2]}" = "$1" ]; then',
  '        case ${f[0]} in Z|X|x) ;; *) return 0;; esac',
  '      fi',
  '    done',
  '    return 1',
  '  fi',
  '  ps -eo pgid=,stat= 2>/dev/null | awk -v g="$1" \'$1 == g && $2 !~ /^Z/ { f = 1 } END { exit !f }\'',
  '}',
  'report() {',
  '  local d=$1 pid= token= started= rc= ended= cancelled= size= csize= hex=',
  '  [ -r "$d/pid" ] && read -r pid token < "$d/pid"',
  '  [ -r "$d/started" ] && read -r started < "$d/started"',
  '  [ -r "$d/exit" ] && read -r rc ended < "$d/exit"',
  '  [ -r "$d/cancelled" ] && read -r cancelled < "$d/cancelled"',
  '  printf "@job %s\\npid %s\\nstarted %s\\nexit %s %s\\ncancelled %s\\n" "${d##*/}" "$pid" "$started" "$rc" "$ended" "$cancelled"',
  '  if [ -z "$rc" ] && alive "$pid" "$token"; then echo "alive 1"; else echo "alive 0"; fi',
  '  size=$({ wc -c < "$d/log"; } 2>/dev/null)',
  '  csize=$({ wc -c < "$d/command"; } 2>/dev/null)',
  '  hex=$({ od -An -v -tx1 -N "$2" -- "$d/command" | tr -d " \\n"; } 2>/dev/null)',
  '  printf "log %s\\ncommand %s %s\\n" "${size//[!0-9]/}" "${csize//[!0-9]/}" "$hex"',
  '}',
  'printf "@now %s\\n" "${EPOCHREALTIME:-$(date +%s)}"',
].join('\n');

/**
 * The runner, started with setsid as `bash -c RUNNER sshgate-job DIR MAX_LOG_BYTES UMASK`: it leads the job's
 * session and process group, records its pid, runs the command with stdin from /dev/null and its output into
 * the capped log, then writes the exit file. The writer keeps draining past the cap, so a chatty command is
 * never killed by SIGPIPE. The runner traps TERM/INT/HUP so it outlives a cancel long enough to record the
 * status (traps are reset in the command); SIGKILL leaves no exit file, which the cancel marker accounts for.
 */
const RUNNER = [
  'd=$1 max=$2 um=$3',
  'umask 077',
  START_TOKEN,
  'printf "%s %s\\n" "$$" "$(start_token "$$")" > "$d/pid.tmp" && mv -f -- "$d/pid.tmp" "$d/pid"',
  'trap : TERM INT HUP',
  '{ umask "$um"; exec bash -c "$(< "$d/command")"; } < /dev/null 2>&1 | { head -c "$max"; cat > /dev/null; } > "$d/log"',
  'rc=${PIPESTATUS[0]}',
  'printf "%s %s\\n" "$rc" "${EPOCHREALTIME:-$(date +%s)}" > "$d/exit.tmp" && mv -f -- "$d/exit.tmp" "$d/exit"',
].join('\n');

function startScript(settings: Config['jobs'], jobId: string, cwd: string | undefined, env: [string, string][]): string {
  const exports = env.map(([name, value]) => `export ${name}=${shellQuote(value)}; `).join('');
  return [
    'fail() { printf "@error %s\\n" "$1"; exit 1; }',
    'um=$(umask)',
    'umask 077',
    `base=${baseExpression(settings.dir)}`,
    `id=${shellQuote(jobId)}`,
    `max=${String(Math.floor(settings.max_log_bytes))}`,
    cwd === undefined ? 'cwd=' : `cwd=${shellQuote(cwd)}`,
    'case $base in /*) ;; *) fail "the remote home directory is unknown (HOME is not set)";; esac',
    'mkdir -p -- "$base" 2>/dev/null || fail "cannot create the job directory $base"',
    // Security: a job directory someone else owns could be read or tampered with by them.
    '[ -O "$base" ] || fail "the job directory $base is not owned by the remote user"',
    'd=$base/$id',
    'mkdir -- "$d" 2>/dev/null || fail "cannot create $d"',
    'cat > "$d/command" || { rm -rf -- "$d"; fail "cannot write $d/command"; }',
    'command -v setsid > /dev/null 2>&1 || { rm -rf -- "$d"; fail "setsid is not installed on the host (util-linux or busybox provide it)"; }',
    'if [ -n "$cwd" ] && ! cd -- "$cwd" 2>/dev/null; then rm -rf -- "$d"; fail "cannot enter the working directory $cwd"; fi',
    'printf "%s\\n" "${EPOCHREALTIME:-$(date +%s)}" > "$d/started"',
    // The environment is exported in the subshell only, so it cannot change how this script runs.
    `( ${exports}exec setsid bash -c ${shellQuote(RUNNER)} sshgate-job "$d" "$max" "$um" ) < /dev/null > /dev/null 2>&1 &`,
    'i=0',
    'while [ ! -s "$d/pid" ] && [ "$i" -lt 250 ]; do sleep 0.02; i=$((i + 1)); done',
    '[ -s "$d/pid" ] || fail "the job did not start (no pid after 5 s); see $d"',
    'read -r pid token < "$d/pid"',
    'read -r started < "$d/started"',
    'printf "@started %s %s %s\\n" "$pid" "$started" "$d"',
  ].join('\n');
}

function getScript(settings: Config['jobs'], jobId: string, read: JobLogRead): string {
  const window =
    'tailBytes' in read
      ? [`n=${String(Math.floor(read.tailBytes))}`, 'off=$(( size > n ? size - n : 0 ))', 'len=$(( size - off ))']
      : [`off=${String(Math.floor(read.offset))}`, `lim=${String(Math.floor(read.limit))}`, 'if [ "$off" -gt "$size" ]; then off=$size; fi', 'len=$(( size - off < lim ? size - off : lim ))'];
  return [
    PRELUDE,
    `base=${baseExpression(settings.dir)}`,
    `d=$base/${shellQuote(jobId)}`,
    '[ -d "$d" ] || exit 0',
    `report "$d" ${String(GET_COMMAND_BYTES)}`,
    'size=$({ wc -c < "$d/log"; } 2>/dev/null); size=${size//[!0-9]/}; size=${size:-0}',
    ...window,
    'printf "@log %s %s %s\\n" "$off" "$len" "$size"',
    'if [ "$len" -gt 0 ]; then tail -c +"$(( off + 1 ))" -- "$d/log" | head -c "$len"; fi',
  ].join('\n');
}

function cancelScript(settings: Config['jobs'], jobId: string, signal: CancelSignal, graceMs: number): string {
  return [
    PRELUDE,
    `base=${baseExpression(settings.dir)}`,
    `d=$base/${shellQuote(jobId)}`,
    '[ -d "$d" ] || exit 0',
    `grace=${String(Math.ceil(graceMs / 100))}`,
    'pid= token=',
    '[ -r "$d/pid" ] && read -r pid token < "$d/pid"',
    // Security: the group is signalled only while its leader (the runner, checked by pid and start time) lives,
    // so a recycled pid never gets our signal.
    'if [ ! -e "$d/exit" ] && alive "$pid" "$token"; then',
    '  printf "%s\\n" "${EPOCHREALTIME:-$(date +%s)}" > "$d/cancelled"',
    `  kill -s ${signal} -- "-$pid" 2>/dev/null`,
    '  echo "@signalled"',
    '  i=0',
    '  while group_alive "$pid" && [ "$i" -lt "$grace" ]; do sleep 0.1; i=$((i + 1)); done',
    '  if group_alive "$pid"; then',
    '    kill -s KILL -- "-$pid" 2>/dev/null',
    '    echo "@escalated"',
    '    i=0',
    '    while group_alive "$pid" && [ "$i" -lt 50 ]; do sleep 0.1; i=$((i + 1)); done',
    '  fi',
    'fi',
    `report "$d" ${String(GET_COMMAND_BYTES)}`,
  ].join('\n');
}

function listScript(settings: Config['jobs'], limit: number): string {
  return [
    PRELUDE,
    `base=${baseExpression(settings.dir)}`,
    'ids=()',
    'if [ -d "$base" ]; then',
    '  for p in "$base"/*/; do',
    '    n=${p%/}; n=${n##*/}',
    '    [[ $n =~ ^[0-9a-f]{28}$ ]] && ids+=("$n")',
    '  done',
    'fi',
    'printf "@total %s\\n" "${#ids[@]}"',
    `first=$(( \${#ids[@]} > ${String(limit)} ? \${#ids[@]} - ${String(limit)} : 0 ))`,
    `for n in "\${ids[@]:first}"; do report "$base/$n" ${String(LIST_COMMAND_BYTES)}; done`,
  ].join('\n');
}

// ---- parsing ------------------------------------------------------------------------------------------------

interface Report {
  jobs: JobRecord[];
  total: number | null;
  log: { offset: number; length: number; size: number; text: string } | null;
}

/** Epoch seconds as bash prints them (`EPOCHREALTIME` uses the locale's decimal mark) to milliseconds. */
function parseEpochMs(text: string): number | null {
  if (!/^\d+([.,]\d+)?$/u.test(text)) return null;
  return Math.round(Number(text.replace(',', '.')) * 1000);
}

function parseCount(text: string | undefined): number | null {
  return text !== undefined && /^\d+$/u.test(text) ? Number(text) : null;
}

interface RawJob {
  id: string;
  fields: Map<string, string>;
}

function toRecord(raw: RawJob, nowMs: number | null, maxLogBytes: number): JobRecord {
  const field = (key: string): string => raw.fields.get(key) ?? '';
  const [code, ended] = field('exit').split(' ');
  const exitCode = parseCount(code);
  const endedMs = exitCode === null ? null : parseEpochMs(ended ?? '');
  const cancelledMs = parseEpochMs(field('cancelled'));
  const startedMs = parseEpochMs(field('started'));
  let state: JobState;
  if (exitCode !== null) state = cancelledMs === null ? 'exited' : 'killed';
  else if (field('alive') === '1') state = 'running';
  else state = cancelledMs === null ? 'lost' : 'killed';
  // A job killed by SIGKILL wrote no exit file: it ended when it was cancelled.
  const endMs = state === 'running' ? null : (endedMs ?? (state === 'killed' ? cancelledMs : null));
  const until = state === 'running' ? nowMs : endMs;
  const [size, hex] = field('command').split(' ');
  const shown = Buffer.from(/^(?:[0-9a-f]{2})*$/u.test(hex ?? '') ? (hex ?? '') : '', 'hex');
  const logBytes = parseCount(field('log')) ?? 0;
  return {
    job_id: raw.id,
    state,
    pid: parseCount(field('pid')),
    exit_code: exitCode,
    started_at: startedMs === null ? null : new Date(startedMs).toISOString(),
    ended_at: endMs === null ? null : new Date(endMs).toISOString(),
    runtime_ms: startedMs === null || until === null ? null : Math.max(0, until - startedMs),
    command: shown.toString('utf8'),
    command_truncated: (parseCount(size) ?? 0) > shown.length,
    log_bytes: logBytes,
    log_capped: logBytes >= maxLogBytes,
  };
}

/**
 * Parses the output of a job script: `@now`, then `@job` records of `key value` lines, then (get only) an
 * `@log OFFSET LENGTH SIZE` line followed by the log bytes, which are never parsed as records.
 */
function parseReport(out: string, maxLogBytes: number): Report {
  const start = /(?:^|\n)@now /u.exec(out);
  if (start === null) throw new SshgateError('REMOTE_FAILURE', 'the job script printed no report (is bash installed on the host?)');
  let pos = start.index + (out[start.index] === '\n' ? 1 : 0);
  let nowMs: number | null = null;
  let total: number | null = null;
  const raws: RawJob[] = [];
  let log: Report['log'] = null;
  while (pos < out.length) {
    const nl = out.indexOf('\n', pos);
    const line = nl === -1 ? out.slice(pos) : out.slice(pos, nl);
    pos = nl === -1 ? out.length : nl + 1;
    const space = line.indexOf(' ');
    const key = space === -1 ? line : line.slice(0, space);
    const value = space === -1 ? '' : line.slice(space + 1);
    if (key === '@now') nowMs = parseEpochMs(value);
    else if (key === '@total') total = parseCount(value);
    else if (key === '@job') {
      if (JOB_ID_PATTERN.test(value)) raws.push({ id: value, fields: new Map() });
    } else if (key === '@log') {
      const [offset, length, size] = value.split(' ').map((v) => parseCount(v) ?? 0);
      log = { offset: offset ?? 0, length: length ?? 0, size: size ?? 0, text: out.slice(pos) };
      break;
    } else if (!key.startsWith('@')) raws.at(-1)?.fields.set(key, value);
  }
  return { jobs: raws.map((raw) => toRecord(raw, nowMs, maxLogBytes)), total, log };
}
