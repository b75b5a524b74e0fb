// Background jobs (issue 5) against a real OpenSSH sshd, through a real MCP client: detached runs that survive a
// closed connection, capped logs, cancellation of the whole process group, and lost jobs.
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { homedir, tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { assertJobId } from '../../src/ssh/jobs.js';
import { startSshd, type SshdInstance } from '../../src/testing/sshd.js';
import { startHarness, type Harness, type HarnessOptions } from '../helpers/harness.js';

interface Job {
  job_id: string;
  state: 'running' | 'exited' | 'killed' | 'lost';
  pid: number | null;
  exit_code: number | null;
  runtime_ms: number | null;
  started_at: string | null;
  ended_at: string | null;
  command: string;
  log_bytes: number;
  log_capped: boolean;
}
interface JobWithOutput extends Job {
  output: string;
  output_offset: number;
  output_bytes: number;
  next_offset: number;
  has_more: boolean;
}
interface Started {
  job_id: string;
  pid: number;
  dir: string;
  started_at: string;
}

const MAX_LOG_BYTES = 10_000;

let sshd: SshdInstance;
let h: Harness;
let jobsDir: string;
let work: string;
/** A marker unique to this run, put in the commands so that ps can find exactly our processes. */
const marker = String(100_000 + (randomBytes(3).readUIntBE(0, 3) % 800_000));
const startedPids: number[] = [];

function harnessOptions(dir: string): HarnessOptions {
  return {
    hosts: {
      box: { sshd },
      watcher: { sshd, config: { tier: 'read' } },
      lenient: { sshd, config: { commands: { allow_constructs: ['trap'] } } },
    },
    config: { tier: 'exec', jobs: { dir, max_log_bytes: MAX_LOG_BYTES } },
  };
}

/** Live (non-zombie) processes on this machine whose command line contains `needle`. */
function liveProcesses(needle: string): string[] {
  const out = execFileSync('ps', ['-eo', 'pid=,stat=,args='], { encoding: 'utf8' });
  return out.split('\n').filter((l) => l.includes(needle) && !/^\s*\d+\s+Z/u.test(l) && !l.includes('ps -eo'));
}

/** Live (non-zombie) members of process group `pgid`. */
function liveGroupMembers(pgid: number): string[] {
  const out = execFileSync('ps', ['-eo', 'pid=,pgid=,stat=,args='], { encoding: 'utf8' });
  return out.split('\n').filter((l) => {
    const [, group, stat] = l.trim().split(/\s+/u);
    return Number(group) === pgid && stat !== undefined && !stat.startsWith('Z');
  });
}

async function start(harness: Harness, args: Record<string, unknown>): Promise<Started> {
  const started = await harness.ok<Started>('ssh_start_job', { host: 'box', ...args });
  startedPids.push(started.pid);
  return started;
}

async function waitForJob(harness: Harness, jobId: string, done: (job: JobWithOutput) => boolean, ms = 15_000, host = 'box'): Promise<JobWithOutput> {
  const until = Date.now() + ms;
  for (;;) {
    const job = await harness.ok<JobWithOutput>('ssh_get_job', { host, job_id: jobId });
    if (done(job) || Date.now() > until) return job;
    await new Promise((r) => setTimeout(r, 200));
  }
}

async function waitUntil(check: () => boolean, ms = 5000): Promise<boolean> {
  const until = Date.now() + ms;
  while (Date.now() < until) {
    if (check()) return true;
    await new Promise((r) => setTimeout(r, 50));
  }
  return check();
}

beforeAll(async () => {
  sshd = await startSshd({ address: '127.0.0.44' });
  jobsDir = mkdtempSync(join(tmpdir(), 'sshgate-jobs-'));
  work = mkdtempSync(join(tmpdir(), 'sshgate-jobs-work-'));
  h = await startHarness(harnessOptions(jobsDir));
});

afterAll(async () => {
  await h.close();
  // Leave nothing behind: stop any of our jobs still running (checked by their command line, never by name).
  for (const pid of startedPids) {
    let cmdline: string;
    try {
      cmdline = readFileSync(`/proc/${pid}/cmdline`, 'utf8');
    } catch {
      continue;
    }
    if (!cmdline.includes('sshgate-job')) continue;
    try {
      process.kill(-pid, 'SIGKILL');
    } catch {
      // Already gone.
    }
  }
  await sshd.stop();
  rmSync(jobsDir, { recursive: true, force: true });
  rmSync(work, { recursive: true, force: true });
});

describe('ssh_start_job and ssh_get_job', () => {
  it('runs a command detached, reports it running, then exited with its exit code, runtime and output', async () => {
    const started = await start(h, { command: `echo hello; echo oops >&2; sleep 1.${marker}; echo bye; exit 3` });
    expect(started.job_id).toMatch(/^[0-9a-f]{28}$/u);
    expect(started.dir).toBe(join(jobsDir, started.job_id));

    const running = await h.ok<JobWithOutput>('ssh_get_job', { host: 'box', job_id: started.job_id });
    expect(running.state).toBe('running');
    expect(running.pid).toBe(started.pid);
    expect(running.exit_code).toBeNull();
    expect(running.command).toBe(`echo hello; echo oops >&2; sleep 1.${marker}; echo bye; exit 3`);
    // The job leads its own session and process group (setsid), apart from the SSH session that started it.
    const [sid, pgid] = execFileSync('ps', ['-o', 'sid=,pgid=', '-p', String(started.pid)], { encoding: 'utf8' }).trim().split(/\s+/u);
    expect(Number(sid)).toBe(started.pid);
    expect(Number(pgid)).toBe(started.pid);

    const done = await waitForJob(h, started.job_id, (j) => j.state !== 'running');
    expect(done.state).toBe('exited');
    expect(done.exit_code).toBe(3);
    expect(done.output).toBe('hello\noops\nbye\n');
    expect(done.runtime_ms).toBeGreaterThanOrEqual(1000);
    expect(done.runtime_ms).toBeLessThan(10_000);
    expect(Date.parse(done.ended_at ?? '') - Date.parse(done.started_at ?? '')).toBe(done.runtime_ms);
    expect(done.has_more).toBe(false);

    // The job directory and its files are private to the remote user.
    expect(statSync(started.dir).mode & 0o777).toBe(0o700);
    expect(statSync(join(started.dir, 'log')).mode & 0o077).toBe(0);
    expect(readFileSync(join(started.dir, 'command'), 'utf8')).toBe(done.command);
  });

  it('runs in the given cwd with the given environment, whose values cannot break out of their quoting', async () => {
    const pwned = join(work, 'pwned');
    const started = await start(h, {
      command: 'pwd; printf "%s\\n" "$GREETING"; umask',
      cwd: work,
      env: { GREETING: `it's "quoted"'; touch ${pwned}; echo '` },
    });
    const done = await waitForJob(h, started.job_id, (j) => j.state !== 'running');
    expect(done.exit_code).toBe(0);
    const [pwd, greeting, umask] = done.output.split('\n');
    expect(pwd).toBe(work);
    expect(greeting).toBe(`it's "quoted"'; touch ${pwned}; echo '`);
    // The job runs with the account's usual umask, not the 077 used for the job directory.
    expect(umask).toBe(execFileSync('bash', ['-c', 'umask'], { encoding: 'utf8' }).trim());
    expect(existsSync(pwned)).toBe(false);
  });

  it('pages the log with offset and limit, and tail_bytes returns its end', async () => {
    const started = await start(h, { command: 'seq 1 1000' });
    const done = await waitForJob(h, started.job_id, (j) => j.state !== 'running');
    const full = execFileSync('seq', ['1', '1000'], { encoding: 'utf8' });
    expect(done.log_bytes).toBe(full.length);
    const page1 = await h.ok<JobWithOutput>('ssh_get_job', { host: 'box', job_id: started.job_id, offset: 0, limit: 100 });
    expect(page1.output).toBe(full.slice(0, 100));
    expect(page1.has_more).toBe(true);
    const page2 = await h.ok<JobWithOutput>('ssh_get_job', { host: 'box', job_id: started.job_id, offset: page1.next_offset, limit: 100_000 });
    expect(page1.output + page2.output).toBe(full);
    expect(page2.has_more).toBe(false);
    const tail = await h.ok<JobWithOutput>('ssh_get_job', { host: 'box', job_id: started.job_id, tail_bytes: 9 });
    expect(tail.output).toBe('999\n1000\n');
    expect(tail.output_offset).toBe(full.length - 9);
    const both = await h.err('ssh_get_job', { host: 'box', job_id: started.job_id, tail_bytes: 9, offset: 0 });
    expect(both.code).toBe('INVALID_INPUT');
  });

  it('caps the log on the host at jobs.max_log_bytes and lets the job run on past the cap', async () => {
    const started = await start(h, { command: `head -c 50000 /dev/zero | tr '\\0' x; echo; echo still-running-after-cap; exit 5` });
    const done = await waitForJob(h, started.job_id, (j) => j.state !== 'running');
    // Exit 5, not SIGPIPE: output past the cap is drained, not refused.
    expect(done.state).toBe('exited');
    expect(done.exit_code).toBe(5);
    expect(statSync(join(started.dir, 'log')).size).toBe(MAX_LOG_BYTES);
    expect(done.log_bytes).toBe(MAX_LOG_BYTES);
    expect(done.log_capped).toBe(true);
    expect(done.output).not.toContain('still-running-after-cap');
  });
});

describe('ssh_cancel_job', () => {
  it('stops the whole process group with SIGTERM, children included, and nothing is left running', async () => {
    const sleeper = `sleep 3${marker}`;
    const started = await start(h, { command: `${sleeper} & ${sleeper} & wait` });
    expect(await waitUntil(() => liveProcesses(sleeper).filter((l) => l.endsWith(` ${sleeper}`)).length === 2)).toBe(true);

    const out = await h.ok<Job & { signalled: boolean; escalated: boolean }>('ssh_cancel_job', { host: 'box', job_id: started.job_id });
    expect(out.state).toBe('killed');
    expect(out.signalled).toBe(true);
    expect(out.escalated).toBe(false);
    // The runner outlives SIGTERM long enough to record the command's status: 128 + 15.
    expect(out.exit_code).toBe(143);
    expect(liveProcesses(sleeper)).toEqual([]);
    expect(liveGroupMembers(started.pid)).toEqual([]);

    const again = await h.ok<Job & { signalled: boolean }>('ssh_cancel_job', { host: 'box', job_id: started.job_id });
    expect(again.state).toBe('killed');
    expect(again.signalled).toBe(false);
  });

  it('escalates to SIGKILL when the job ignores SIGTERM past grace_ms', async () => {
    const sleeper = `sleep 4${marker}`;
    const started = await h.ok<Started>('ssh_start_job', { host: 'lenient', command: `trap '' TERM; ${sleeper} & ${sleeper}; wait` });
    startedPids.push(started.pid);
    expect(await waitUntil(() => liveProcesses(sleeper).filter((l) => l.endsWith(` ${sleeper}`)).length === 2)).toBe(true);

    const before = Date.now();
    const out = await h.ok<Job & { signalled: boolean; escalated: boolean }>('ssh_cancel_job', { host: 'lenient', job_id: started.job_id, grace_ms: 500 });
    expect(Date.now() - before).toBeGreaterThanOrEqual(500);
    expect(out.escalated).toBe(true);
    expect(out.state).toBe('killed');
    expect(out.ended_at).not.toBeNull();
    expect(liveProcesses(sleeper)).toEqual([]);
    expect(liveGroupMembers(started.pid)).toEqual([]);
  });

  it('reports a job that already exited without signalling anything', async () => {
    const started = await start(h, { command: 'true' });
    await waitForJob(h, started.job_id, (j) => j.state !== 'running');
    const out = await h.ok<Job & { signalled: boolean }>('ssh_cancel_job', { host: 'box', job_id: started.job_id });
    expect(out.state).toBe('exited');
    expect(out.exit_code).toBe(0);
    expect(out.signalled).toBe(false);
  });
});

describe('lost jobs', () => {
  it('reports lost when the job is killed from outside and leaves no exit status', async () => {
    const sleeper = `sleep 5${marker}`;
    const started = await start(h, { command: sleeper });
    expect((await h.ok<Job>('ssh_get_job', { host: 'box', job_id: started.job_id })).state).toBe('running');
    process.kill(-started.pid, 'SIGKILL');
    expect(await waitUntil(() => liveGroupMembers(started.pid).length === 0)).toBe(true);
    const job = await h.ok<Job>('ssh_get_job', { host: 'box', job_id: started.job_id });
    expect(job.state).toBe('lost');
    expect(job.exit_code).toBeNull();
    expect(job.runtime_ms).toBeNull();
    // Nothing to cancel any more; the job stays lost.
    const cancelled = await h.ok<Job & { signalled: boolean }>('ssh_cancel_job', { host: 'box', job_id: started.job_id });
    expect(cancelled.signalled).toBe(false);
    expect(cancelled.state).toBe('lost');
  });
});

describe('job ids', () => {
  it.each(['../../etc', '..', '/etc/passwd', "0123456789abcdef0123456789a'", '0123456789ABCDEF0123456789AB', ''])('refuses %j as a job id', async (bad) => {
    for (const tool of ['ssh_get_job', 'ssh_cancel_job']) {
      const e = await h.err(tool, { host: 'box', job_id: bad });
      expect(e.code === 'SDK_ERROR' || e.code === 'INVALID_INPUT').toBe(true);
    }
    expect(() => assertJobId(bad)).toThrow(/not a job id/u);
  });

  it('reports an unknown (well-formed) job id as not found', async () => {
    const e = await h.err('ssh_get_job', { host: 'box', job_id: '0'.repeat(28) });
    expect(e.code).toBe('REMOTE_NOT_FOUND');
    expect(e.hint).toContain('ssh_list_jobs');
  });
});

describe('ssh_list_jobs', () => {
  it('lists the host\'s jobs newest first, with the total', async () => {
    const first = await start(h, { command: 'echo first' });
    const second = await start(h, { command: 'echo second' });
    const out = await h.ok<{ jobs: Job[]; total: number }>('ssh_list_jobs', { host: 'box' });
    expect(out.total).toBe(readdirSync(jobsDir).length);
    expect(out.jobs.map((j) => j.job_id).slice(0, 2)).toEqual([second.job_id, first.job_id]);
    expect(out.jobs[1]?.command).toBe('echo first');
    const one = await h.ok<{ jobs: Job[]; total: number }>('ssh_list_jobs', { host: 'box', limit: 1 });
    expect(one.jobs.map((j) => j.job_id)).toEqual([second.job_id]);
    expect(one.total).toBe(out.total);
  });
});

describe('policy', () => {
  it('starts nothing when the command policy refuses the command or its environment', async () => {
    const before = readdirSync(jobsDir).length;
    const refused = await h.err('ssh_start_job', { host: 'box', command: 'echo $(id)' });
    expect(refused.code).toBe('COMMAND_DENIED');
    const env = await h.err('ssh_start_job', { host: 'box', command: 'ls', env: { LD_PRELOAD: '/tmp/evil.so' } });
    expect(env.code).toBe('COMMAND_DENIED');
    expect(readdirSync(jobsDir).length).toBe(before);
  });

  it('lets a read-tier host watch jobs but not start or cancel them', async () => {
    const started = await start(h, { command: 'echo watched' });
    const denied = await h.err('ssh_start_job', { host: 'watcher', command: 'echo nope' });
    expect(denied.code).toBe('POLICY_DENIED');
    const job = await waitForJob(h, started.job_id, (j) => j.state !== 'running', 15_000, 'watcher');
    expect(job.output).toBe('watched\n');
    expect((await h.ok<{ jobs: Job[] }>('ssh_list_jobs', { host: 'watcher' })).jobs.length).toBeGreaterThan(0);
    expect((await h.err('ssh_cancel_job', { host: 'watcher', job_id: started.job_id })).code).toBe('POLICY_DENIED');
  });
});

describe('surviving sshgate', () => {
  it('keeps a job running when the harness and all its connections close, and finds it again from a new one', async () => {
    // A job directory relative to the remote home, as configured by default (~/.sshgate/jobs), but private to this test.
    const relative = `.sshgate-test-${randomBytes(6).toString('hex')}`;
    const home = homedir();
    try {
      const first = await startHarness(harnessOptions(`${relative}/jobs`));
      let started: Started;
      try {
        started = await start(first, { command: `sleep 3.${marker}; echo survived; exit 7` });
      } finally {
        await first.close();
      }
      expect(started.dir).toBe(join(home, relative, 'jobs', started.job_id));
      expect(statSync(join(home, relative)).mode & 0o777).toBe(0o700);

      const second = await startHarness(harnessOptions(`${relative}/jobs`));
      try {
        const found = await second.ok<JobWithOutput>('ssh_get_job', { host: 'box', job_id: started.job_id });
        expect(found.state).toBe('running');
        const listed = await second.ok<{ jobs: Job[] }>('ssh_list_jobs', { host: 'box' });
        expect(listed.jobs.map((j) => j.job_id)).toEqual([started.job_id]);
        const done = await waitForJob(second, started.job_id, (j) => j.state !== 'running');
        expect(done.state).toBe('exited');
        expect(done.exit_code).toBe(7);
        expect(done.output).toBe('survived\n');
      } finally {
        await second.close();
      }
    } finally {
      rmSync(join(home, relative), { recursive: true, force: true });
    }
  });
});
