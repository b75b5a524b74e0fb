// The shell group: persistent sessions that keep the working directory and environment (POSIX) or the device mode
// (network-device CLIs) from one command to the next.
import { z } from 'zod';
import { DEFAULT_SEND_TIMEOUT_MS, SHELL_INTERRUPT_GRACE_MS } from '../ssh/shell-session.js';
import { defineTool, type AnyTool } from './define-tool.js';
import { hostAlias } from './fields.js';
import { requireHost } from './hosts.js';

const sessionId = z.string().min(1).max(100).describe('The session_id returned by ssh_open_shell for this host.');

/** The fields describing a session. */
const sessionShape = {
  session_id: z.string().describe('Pass it to ssh_send_shell and ssh_close_shell, with the same host.'),
  host: z.string(),
  platform: z.enum(['posix', 'cli']).describe('posix: bash with exit codes and a working directory; cli: a network device driven through its prompt.'),
  busy: z.boolean().describe('A command is running (further commands wait for it).'),
  opened_at: z.string(),
  last_used_at: z.string(),
  idle_expires_at: z.string().describe('The session is closed at this time unless it is used before.'),
  expires_at: z.string().describe('The session is closed at this time in any case.'),
  commands_run: z.number().int(),
  cwd: z.string().nullable().describe('posix: working directory after the last command; null for cli.'),
  prompt: z.string().nullable().describe('cli: the last prompt the device showed, which tells its mode (router>, router#, router(config)#); null for posix.'),
  remote_pid: z.number().int().nullable().describe('posix: pid of the remote shell (its process group holds everything the session started).'),
};

export const openShell = defineTool({
  name: 'ssh_open_shell',
  title: 'Open a persistent shell on a host',
  description:
    'Open a persistent shell session on a host and return its session_id. Unlike ssh_exec, state carries over between ' +
    'ssh_send_shell calls: on posix hosts the working directory (cd), exported and plain variables; on network devices ' +
    '(platform cli) the mode (enable, configure terminal). Prefer ssh_exec for independent commands. Sessions close ' +
    'after a period without use and after a maximum lifetime (see idle_expires_at and expires_at), and a host allows a ' +
    'few at a time: close a session with ssh_close_shell when done. A session belongs to this sshgate server only.',
  group: 'shell',
  tier: 'exec',
  kind: 'exec',
  effects: { destructive: false, idempotent: false },
  input: z.object({ host: hostAlias }),
  output: z.object({
    ...sessionShape,
    output: z.string().describe('cli: what the device printed before its first prompt (banner); empty for posix.'),
    note: z.string().nullable().describe('Something worth knowing about the session (paging could not be turned off), or null.'),
  }),
  async run(_input, ctx) {
    return ctx.remote.openShell(requireHost(ctx.host));
  },
  summarize: (out) =>
    [
      `opened ${out.platform} shell ${out.session_id} on ${out.host}${out.platform === 'posix' ? ` (cwd ${out.cwd ?? '?'})` : ` at prompt ${out.prompt ?? '?'}`}`,
      `closes when idle at ${out.idle_expires_at}, at the latest at ${out.expires_at}`,
      ...(out.note === null ? [] : [`note: ${out.note}`]),
      ...(out.output === '' ? [] : [out.output]),
    ].join('\n'),
});

export const sendShell = defineTool({
  name: 'ssh_send_shell',
  title: 'Run a command in a persistent shell',
  description:
    'Run one command in a session opened with ssh_open_shell (same host) and return its output. posix sessions: the ' +
    'command is bash syntax and must pass the host\'s command policy like ssh_exec; it runs in the session\'s shell, so ' +
    'cd and export persist; stdin is empty (a command waiting for input gets end-of-file); stdout and stderr come back ' +
    'together in output, with the exact exit_code. cli sessions (network devices): send one line; output is what the ' +
    'device printed up to its next prompt, with the echo and paging removed; exit_code is null, so read the output ' +
    'for errors such as "% Invalid input"; prompt shows the mode. At timeout_ms (default 60 s) the command is interrupted ' +
    '(SIGINT, or Ctrl-C on a device), timed_out is true and the session normally stays usable; session_open says whether ' +
    'it did. output is capped (head and tail kept, truncated set): narrow the command if you need the middle.',
  group: 'shell',
  tier: 'exec',
  kind: 'exec',
  effects: { destructive: true, idempotent: false },
  input: z.object({
    host: hostAlias,
    session_id: sessionId,
    command: z.string().min(1).describe('posix: a bash command line; cli: one line of the device\'s command language.'),
    timeout_ms: z.number().int().min(100).optional().describe('Interrupt the command after this long (default 60000; the server caps it).'),
    max_output_bytes: z.number().int().min(1024).optional().describe('Bytes of output kept (head and tail); the server caps it.'),
  }),
  output: z.object({
    session_id: z.string(),
    output: z.string(),
    exit_code: z.number().int().nullable().describe('posix: exit status (130 after an interrupt); cli: null.'),
    timed_out: z.boolean(),
    truncated: z.boolean().describe('True when output went past the cap: the head and tail are kept, with a marker between them.'),
    output_bytes: z.number().int().describe('Bytes of output in all, kept or not.'),
    duration_ms: z.number().int(),
    session_open: z.boolean().describe('False when the session ended during this command (exit, a command that could not be interrupted, its lifetime).'),
    cwd: z.string().nullable().describe('posix: working directory after the command.'),
    prompt: z.string().nullable().describe('cli: the prompt after the command (the device mode).'),
    note: z.string().nullable().describe('What happened beyond the output (an interrupt, the session closing), or null.'),
  }),
  // The command policy checks the line before it is sent: bash grammar on posix hosts, whole-line regexes on cli hosts.
  policy: ({ command }) => ({ command }),
  timeoutMs: ({ timeout_ms }) => (timeout_ms ?? DEFAULT_SEND_TIMEOUT_MS) + SHELL_INTERRUPT_GRACE_MS,
  async run(input, ctx) {
    // The interrupt happens within the call's timeout, which the server may have capped.
    const timeoutMs = Math.max(100, Math.min(input.timeout_ms ?? DEFAULT_SEND_TIMEOUT_MS, ctx.timeoutMs - SHELL_INTERRUPT_GRACE_MS));
    return ctx.remote.sendShell(requireHost(ctx.host), input.session_id, input.command, {
      timeoutMs,
      maxOutputBytes: Math.min(input.max_output_bytes ?? ctx.limits.maxOutputBytes, ctx.limits.maxOutputBytes),
    });
  },
  summarize: (out) => {
    const status = out.exit_code === null ? (out.prompt === null ? 'no exit status' : `prompt ${out.prompt}`) : `exit ${out.exit_code}`;
    const head = `${status} in ${out.duration_ms} ms${out.timed_out ? ' (timed out)' : ''}${out.truncated ? ' (output truncated)' : ''}${out.session_open ? '' : ' (session closed)'}`;
    return [head, ...(out.note === null ? [] : [`note: ${out.note}`]), ...(out.output === '' ? [] : [out.output])].join('\n');
  },
});

export const closeShell = defineTool({
  name: 'ssh_close_shell',
  title: 'Close a persistent shell',
  description:
    'Close a session opened with ssh_open_shell (same host). On posix hosts everything the session started is stopped, ' +
    'background jobs included; use ssh_start_job for work that must outlive the session.',
  group: 'shell',
  tier: 'exec',
  kind: 'exec',
  effects: { destructive: false, idempotent: false },
  input: z.object({ host: hostAlias, session_id: sessionId }),
  output: z.object({ session_id: z.string(), host: z.string(), commands_run: z.number().int() }),
  async run(input, ctx) {
    return ctx.remote.closeShell(requireHost(ctx.host), input.session_id);
  },
  summarize: (out) => `closed shell ${out.session_id} on ${out.host} after ${out.commands_run} command${out.commands_run === 1 ? '' : 's'}`,
});

export const listShells = defineTool({
  name: 'ssh_list_shells',
  title: 'List persistent shells',
  description: 'List the shell sessions open on this sshgate server (all hosts), with their working directory or prompt and when they expire.',
  group: 'shell',
  tier: 'exec',
  kind: 'meta',
  effects: { destructive: false, idempotent: true },
  input: z.object({}),
  output: z.object({ sessions: z.array(z.object(sessionShape)) }),
  run(_input, ctx) {
    return Promise.resolve({ sessions: ctx.remote.listShells() });
  },
  summarize: (out) =>
    out.sessions.length === 0
      ? 'no open shell sessions'
      : out.sessions
          .map((s) => `${s.session_id} ${s.host} ${s.platform}${s.busy ? ' busy' : ''} ${s.platform === 'posix' ? (s.cwd ?? '') : (s.prompt ?? '')} (${s.commands_run} commands, idle until ${s.idle_expires_at})`)
          .join('\n'),
});

export const shellTools: readonly AnyTool[] = [openShell, sendShell, closeShell, listShells];
