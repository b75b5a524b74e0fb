// The exec group: run one command on a host, with a real timeout and capped output.
import { z } from 'zod';
import { shellQuote } from '../policy/shell-quote.js';
import { defineTool } from './define-tool.js';
import { execResultShape, hostAlias, remotePath } from './fields.js';
import { requireHost } from './hosts.js';

export const exec = defineTool({
  name: 'ssh_exec',
  title: 'Run a command on a host',
  description:
    "Run one shell command on a host through the remote account's shell and wait for it. A non-zero exit_code is a normal " +
    'result, not an error. stdin is closed unless you pass stdin. On timeout (timeout_ms, default 60 s) the remote process group ' +
    'is killed and the partial output is returned with timed_out. Each of stdout and stderr is capped (default 1 MiB): past the ' +
    'cap the head and tail are kept with a marker between them and truncated is true; narrow the command (grep, tail, head) if ' +
    'you need the middle. The command must pass the host\'s command policy.',
  group: 'exec',
  tier: 'exec',
  kind: 'exec',
  effects: { destructive: true, idempotent: false },
  input: z.object({
    host: hostAlias,
    command: z.string().min(1).describe('The command line, in POSIX sh syntax.'),
    cwd: remotePath.optional().describe('Working directory (absolute; must lie inside the host\'s roots).'),
    env: z
      .record(z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*$/u, 'environment variable names are letters, digits and _'), z.string())
      .optional()
      .describe('Environment variables for the command (values are quoted safely).'),
    stdin: z.string().optional().describe('Text written to the command\'s standard input, which is then closed.'),
    timeout_ms: z.number().int().min(100).optional().describe('Stop the command after this long (default 60000; the server caps it).'),
    max_output_bytes: z.number().int().min(1024).optional().describe('Bytes kept per stream (head and tail); the server caps it.'),
  }),
  output: z.object(execResultShape),
  policy: ({ command, cwd, env }) => ({
    // The environment is checked as assignments in front of the command, so LD_PRELOAD=... and PATH=... are refused.
    command: env === undefined ? command : `${Object.entries(env).map(([name, value]) => `${name}=${shellQuote(value)}`).join(' ')} ${command}`,
    ...(cwd === undefined ? {} : { cwd }),
  }),
  timeoutMs: ({ timeout_ms }) => timeout_ms,
  async run(input, ctx) {
    const result = await ctx.remote.exec(requireHost(ctx.host), input.command, {
      ...(input.cwd === undefined ? {} : { cwd: input.cwd }),
      ...(input.env === undefined ? {} : { env: input.env }),
      ...(input.stdin === undefined ? {} : { stdin: input.stdin }),
      maxOutputBytes: Math.min(input.max_output_bytes ?? ctx.limits.maxOutputBytes, ctx.limits.maxOutputBytes),
    });
    const { stdout_bytes, stderr_bytes, ...rest } = result;
    return { ...rest, stdout_bytes, stderr_bytes };
  },
  summarize: (out) => {
    const status = out.exit_code === null ? `killed by ${out.signal ?? 'a signal'}` : `exit ${out.exit_code}`;
    const parts = [`${status} in ${out.duration_ms} ms${out.truncated ? ' (output truncated)' : ''}`];
    if (out.stdout !== '') parts.push(`--- stdout ---\n${out.stdout}`);
    if (out.stderr !== '') parts.push(`--- stderr ---\n${out.stderr}`);
    return parts.join('\n');
  },
});

export const execTools = [exec] as const;
