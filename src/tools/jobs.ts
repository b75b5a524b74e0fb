// The jobs group: background commands that survive a dropped connection or a restart of sshgate, watched and
// stopped by job id.
import { z } from 'zod';
import { invalidInput } from '../errors.js';
import { shellQuote } from '../policy/shell-quote.js';
import { CANCEL_SIGNALS, JOB_ID_PATTERN, JOB_STATES, type JobRecord } from '../ssh/jobs.js';
import { defineTool, type AnyTool } from './define-tool.js';
import { hostAlias, remotePath } from './fields.js';
import { requireHost } from './hosts.js';

const jobId = z
  .string()
  .regex(JOB_ID_PATTERN, 'a job id is 28 hex digits, as returned by ssh_start_job')
  .describe('The job id returned by ssh_start_job (or listed by ssh_list_jobs) on this host.');

const DEFAULT_TAIL_BYTES = 16 * 1024;
const DEFAULT_PAGE_BYTES = 64 * 1024;

/** The fields every job report has. */
const jobShape = {
  job_id: z.string(),
  state: z.enum(JOB_STATES).describe('running; exited (exit_code set); killed (cancelled by ssh_cancel_job); lost (the process is gone without an exit status: killed from outside or the host rebooted).'),
  pid: z.number().int().nullable().describe('Pid of the job on the host; it leads the job\'s process group.'),
  exit_code: z.number().int().nullable().describe('Exit status once the command ended; 128+N means it was ended by signal N.'),
  started_at: z.string().nullable(),
  ended_at: z.string().nullable(),
  runtime_ms: z.number().int().nullable().describe('From start to end, or to now while running (host clock).'),
  command: z.string(),
  command_truncated: z.boolean().describe('Only the first bytes of the command are shown.'),
  log_bytes: z.number().int().describe('Bytes of output (stdout and stderr together) stored on the host.'),
  log_capped: z.boolean().describe('The log reached the server\'s size cap; later output was dropped on the host.'),
};

function describeJob(job: Pick<JobRecord, 'job_id' | 'state' | 'exit_code' | 'runtime_ms' | 'pid'>): string {
  const runtime = job.runtime_ms === null ? '' : ` after ${(job.runtime_ms / 1000).toFixed(1)} s`;
  switch (job.state) {
    case 'running':
      return `job ${job.job_id} is running (pid ${String(job.pid)})${job.runtime_ms === null ? '' : ` for ${(job.runtime_ms / 1000).toFixed(1)} s`}`;
    case 'exited':
      return `job ${job.job_id} exited with ${String(job.exit_code)}${runtime}`;
    case 'killed':
      return `job ${job.job_id} was killed${job.exit_code === null ? '' : ` (exit ${String(job.exit_code)})`}${runtime}`;
    case 'lost':
      return `job ${job.job_id} is lost: its process is gone and it left no exit status`;
  }
}

export const startJob = defineTool({
  name: 'ssh_start_job',
  title: 'Start a background job on a host',
  description:
    'Start one shell command in the background on a host and return its job_id at once. The job runs detached in its own ' +
    'session (stdin closed), so it keeps running when the connection drops or sshgate restarts. stdout and stderr go together ' +
    'into a log on the host, capped in size. Use ssh_get_job to watch it (state, exit_code, output), ssh_cancel_job to stop it ' +
    'and ssh_list_jobs to find jobs again. Prefer ssh_exec for commands that finish within a minute or so. The command must ' +
    "pass the host's command policy.",
  group: 'jobs',
  tier: 'exec',
  kind: 'exec',
  effects: { destructive: true, idempotent: false },
  input: z.object({
    host: hostAlias,
    command: z.string().min(1).describe('The command line, in POSIX sh syntax (run by bash).'),
    cwd: remotePath.optional().describe('Working directory (absolute; must lie inside the host\'s roots).'),
    env: z
      .record(z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*$/u, 'environment variable names are letters, digits and _'), z.string())
      .optional()
      .describe('Environment variables for the job (values are quoted safely).'),
  }),
  output: z.object({
    host: z.string(),
    job_id: z.string().describe('Pass it to ssh_get_job and ssh_cancel_job with the same host.'),
    pid: z.number().int(),
    started_at: z.string(),
    dir: z.string().describe('The job\'s directory on the host (command, log, pid and exit files).'),
  }),
  policy: ({ command, cwd, env }) => ({
    // As in ssh_exec: the environment is checked as assignments in front of the command (PATH=..., LD_PRELOAD=... are refused).
    command: env === undefined ? command : `${Object.entries(env).map(([name, value]) => `${name}=${shellQuote(value)}`).join(' ')} ${command}`,
    ...(cwd === undefined ? {} : { cwd }),
  }),
  async run(input, ctx) {
    const host = requireHost(ctx.host);
    const started = await ctx.remote.startJob(host, input.command, {
      ...(input.cwd === undefined ? {} : { cwd: input.cwd }),
      ...(input.env === undefined ? {} : { env: input.env }),
    });
    return { host: host.alias, ...started };
  },
  summarize: (out) => `started job ${out.job_id} on ${out.host} (pid ${out.pid}); watch it with ssh_get_job`,
});

export const getJob = defineTool({
  name: 'ssh_get_job',
  title: 'Get the state and output of a background job',
  description:
    'Report a background job started by ssh_start_job: state (running, exited, killed, lost), exit_code, runtime and its output ' +
    '(stdout and stderr interleaved). By default the last tail_bytes of the log are returned; pass offset (and limit) to read ' +
    'the log page by page instead: next_offset continues where this page ended, and has_more says whether more is stored ' +
    'now. To follow a running job, call again later with offset = next_offset.',
  group: 'jobs',
  tier: 'read',
  kind: 'meta',
  effects: { destructive: false, idempotent: true },
  input: z.object({
    host: hostAlias,
    job_id: jobId,
    tail_bytes: z.number().int().min(0).optional().describe(`Return the last this many bytes of the output (default ${DEFAULT_TAIL_BYTES}; the server caps it).`),
    offset: z.number().int().min(0).optional().describe('Return the output from this byte offset instead of the tail.'),
    limit: z.number().int().min(1).optional().describe(`Bytes to return from offset (default ${DEFAULT_PAGE_BYTES}; the server caps it).`),
  }),
  output: z.object({
    host: z.string(),
    ...jobShape,
    output: z.string(),
    output_offset: z.number().int().describe('Byte offset of output in the log.'),
    output_bytes: z.number().int(),
    next_offset: z.number().int().describe('Offset just past output: pass it as offset to read on.'),
    has_more: z.boolean().describe('More output is stored past next_offset.'),
  }),
  async run(input, ctx) {
    const host = requireHost(ctx.host);
    if (input.tail_bytes !== undefined && (input.offset !== undefined || input.limit !== undefined)) {
      throw invalidInput('pass either tail_bytes, or offset (with limit), not both');
    }
    const cap = ctx.limits.maxOutputBytes;
    const read =
      input.offset === undefined && input.limit === undefined
        ? { tailBytes: Math.min(input.tail_bytes ?? DEFAULT_TAIL_BYTES, cap) }
        : { offset: input.offset ?? 0, limit: Math.min(input.limit ?? DEFAULT_PAGE_BYTES, cap) };
    const job = await ctx.remote.getJob(host, input.job_id, read);
    return { host: host.alias, ...job };
  },
  summarize: (out) => {
    const lines = [describeJob(out)];
    lines.push(`command: ${out.command}${out.command_truncated ? ' ...' : ''}`);
    lines.push(
      `--- output bytes ${out.output_offset}-${out.next_offset} of ${out.log_bytes}${out.log_capped ? ' (log capped on the host)' : ''}${out.has_more ? '; more after next_offset' : ''} ---`,
    );
    if (out.output !== '') lines.push(out.output);
    return lines.join('\n');
  },
});

export const cancelJob = defineTool({
  name: 'ssh_cancel_job',
  title: 'Cancel a background job',
  description:
    "Stop a background job: its whole process group gets signal (default TERM), then KILL if anything is still alive after " +
    'grace_ms. Returns the final state (killed, or exited/lost when it had already ended). Processes the job moved into a ' +
    'session of their own (setsid, daemons) are not reached.',
  group: 'jobs',
  tier: 'exec',
  kind: 'exec',
  effects: { destructive: true, idempotent: true },
  input: z.object({
    host: hostAlias,
    job_id: jobId,
    signal: z.enum(CANCEL_SIGNALS).default('TERM').describe('The first signal sent to the job\'s process group.'),
    grace_ms: z.number().int().min(0).max(60_000).default(5000).describe('How long to wait after the first signal before SIGKILL.'),
  }),
  output: z.object({
    host: z.string(),
    ...jobShape,
    signalled: z.boolean().describe('The signal was sent (false: the job had already ended).'),
    escalated: z.boolean().describe('SIGKILL had to follow because the job outlived grace_ms.'),
  }),
  timeoutMs: ({ grace_ms }) => grace_ms + 30_000,
  async run(input, ctx) {
    const host = requireHost(ctx.host);
    const job = await ctx.remote.cancelJob(host, input.job_id, { signal: input.signal, graceMs: input.grace_ms });
    return { host: host.alias, ...job };
  },
  summarize: (out) =>
    `${describeJob(out)}${out.signalled ? ` (signalled${out.escalated ? ', then SIGKILL after the grace period' : ''})` : ' (it had already ended; nothing was sent)'}`,
});

export const listJobs = defineTool({
  name: 'ssh_list_jobs',
  title: 'List background jobs on a host',
  description:
    "List the background jobs in the host's job directory, newest first, with state, exit_code, runtime and the start of each " +
    'command. Jobs started by earlier sshgate sessions are listed too.',
  group: 'jobs',
  tier: 'read',
  kind: 'meta',
  effects: { destructive: false, idempotent: true },
  input: z.object({
    host: hostAlias,
    limit: z.number().int().min(1).max(1000).default(100).describe('Newest jobs to list.'),
  }),
  output: z.object({
    host: z.string(),
    jobs: z.array(z.object(jobShape)),
    total: z.number().int().describe('Jobs in the job directory; more than listed when it exceeds limit.'),
  }),
  async run(input, ctx) {
    const host = requireHost(ctx.host);
    const listed = await ctx.remote.listJobs(host, { limit: input.limit });
    return { host: host.alias, ...listed };
  },
  summarize: (out) =>
    out.jobs.length === 0
      ? `no jobs on ${out.host}`
      : [`${out.total} job(s) on ${out.host}${out.total > out.jobs.length ? `, newest ${out.jobs.length} shown` : ''}:`, ...out.jobs.map((j) => `${describeJob(j)}: ${j.command}${j.command_truncated ? ' ...' : ''}`)].join('\n'),
});

export const jobTools: readonly AnyTool[] = [startJob, getJob, cancelJob, listJobs];
