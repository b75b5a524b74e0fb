// The exec group: run one command on a host, with a real timeout and capped output.
import { z } from 'zod';
import { shellQuote } from '../policy/shell-quote.js';
import { renderTemplate, templateOffered, templateTier } from '../policy/templates.js';
import type { Config, TemplateConfig } from '../config/schema.js';
import { invalidInput, SshgateError } from '../errors.js';
import type { ResolvedHost } from '../config/load.js';
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
    'cap the head and tail are kept with a marker between them, truncated is true, and output_id names the full output, which ' +
    'ssh_read_output pages or greps. With a progress token, the newest output line streams as progress notifications. ' +
    'The command must pass the host\'s command policy.',
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
    stall_timeout_ms: z.number().int().min(100).optional().describe('Stop the command if it prints nothing for this long.'),
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
      ...(input.stall_timeout_ms === undefined ? {} : { stallTimeoutMs: input.stall_timeout_ms }),
    });
    const { stdout_bytes, stderr_bytes, ...rest } = result;
    return { ...rest, stdout_bytes, stderr_bytes };
  },
  summarize: (out) => {
    const status = out.exit_code === null ? `killed by ${out.signal ?? 'a signal'}` : `exit ${out.exit_code}`;
    const parts = [
      `${status} in ${out.duration_ms} ms${out.truncated ? ` (output truncated${out.output_id === null ? '' : `; full output: ssh_read_output output_id ${out.output_id}`})` : ''}`,
    ];
    if (out.stdout !== '') parts.push(`--- stdout ---\n${out.stdout}`);
    if (out.stderr !== '') parts.push(`--- stderr ---\n${out.stderr}`);
    return parts.join('\n');
  },
});

function findTemplate(templates: Config['templates'], name: string): TemplateConfig | undefined {
  return Object.hasOwn(templates, name) ? templates[name] : undefined;
}

export const runTemplate = defineTool({
  name: 'ssh_run_template',
  title: 'Run an operator-defined command template',
  description:
    'Run one of the command templates the operator defined for a host (ssh_list_hosts shows each host\'s templates), filling ' +
    'its parameters. Each parameter is validated by the operator\'s regex and passed as exactly one quoted word, so no shell ' +
    'syntax can be injected; values starting with "-" are refused unless the template allows them. Each template has its own ' +
    'tier: read-tier templates work on read-only hosts. Returns the same result as ssh_exec.',
  group: 'exec',
  tier: 'read',
  kind: 'meta',
  effects: { destructive: false, idempotent: false },
  input: z.object({
    host: hostAlias,
    template: z.string().min(1).describe('Template name.'),
    params: z.record(z.string(), z.string()).default({}).describe('Parameter values by name.'),
  }),
  output: z.object({ template: z.string(), command: z.string().describe('The command as it ran.'), ...execResultShape }),
  tierFor: ({ template }, config) => {
    const t = findTemplate(config.templates, template);
    return t === undefined ? 'read' : templateTier(t);
  },
  policy: ({ template, params }, config) => {
    const t = findTemplate(config.templates, template);
    if (t === undefined) return {};
    try {
      return { operatorCommand: renderTemplate(template, t, params) };
    } catch {
      return {};
    }
  },
  timeoutMs: ({ template }, config) => findTemplate(config.templates, template)?.timeout_ms,
  async run({ template, params }, ctx) {
    const host = requireHost(ctx.host);
    const t = findTemplate(ctx.templates, template);
    if (t === undefined || !templateOffered(t, host.alias, host.labels)) {
      const offered = Object.entries(ctx.templates)
        .filter(([, v]) => templateOffered(v, host.alias, host.labels))
        .map(([k]) => k);
      throw invalidInput(`template ${JSON.stringify(template)} is not offered on host ${host.alias}; offered: ${offered.join(', ') || '(none)'}`);
    }
    const command = renderTemplate(template, t, params);
    const { stdout_bytes, stderr_bytes, ...rest } = await ctx.remote.exec(host, command, {});
    return { template, command, ...rest, stdout_bytes, stderr_bytes };
  },
  summarize: (out) => `${out.template}: ${out.command}\n${exec.summarize(out)}`,
});

export const readOutput = defineTool({
  name: 'ssh_read_output',
  title: 'Page or search the full output of a command',
  description:
    'Read the full output of an earlier ssh_exec or ssh_run_template whose output went past the cap (its output_id). Page it with ' +
    'offset and limit (bytes; follow next_offset), or search it with grep (a JavaScript regular expression) and context lines. ' +
    'Outputs are kept for a limited time and size on the sshgate side; secrets are redacted as in any output.',
  group: 'exec',
  tier: 'read',
  kind: 'meta',
  effects: { destructive: false, idempotent: true },
  input: z.object({
    host: hostAlias.describe('The host the command ran on.'),
    output_id: z.string().min(1).max(64),
    stream: z.enum(['stdout', 'stderr']).default('stdout'),
    offset: z.number().int().min(0).default(0).describe('Byte offset (paging).'),
    limit: z.number().int().min(1).max(4 * 1024 * 1024).default(64 * 1024).describe('Bytes to return (paging).'),
    grep: z.string().max(1000).optional().describe('Return only lines matching this regular expression (with context lines).'),
    context: z.number().int().min(0).max(20).default(2).describe('Lines of context around each grep match.'),
    max_matches: z.number().int().min(1).max(1000).default(100),
    ignore_case: z.boolean().default(false),
  }),
  output: z.object({
    output_id: z.string(),
    stream: z.enum(['stdout', 'stderr']),
    total_bytes: z.number().int().describe('Bytes kept in the spool for this stream.'),
    produced_bytes: z.number().int().describe('Bytes the command wrote on this stream (more than total_bytes when the spool cap cut it).'),
    offset: z.number().int().nullable(),
    content: z.string().nullable().describe('The page (paging mode).'),
    next_offset: z.number().int().nullable(),
    matches: z
      .array(z.object({ line: z.number().int(), text: z.string(), match: z.boolean() }))
      .nullable()
      .describe('Matching lines and their context (grep mode), numbered from 1.'),
    match_count: z.number().int().nullable(),
    truncated: z.boolean().describe('grep mode: more matches than max_matches.'),
  }),
  run(input, ctx) {
    const host = requireHost(ctx.host);
    const spool = ctx.remote.spool();
    if (input.grep === undefined) {
      const limit = Math.min(input.limit, ctx.limits.maxReadBytes);
      const page = spool.read(input.output_id, host.alias, input.stream, input.offset, limit);
      return Promise.resolve({ ...page, matches: null, match_count: null, truncated: false });
    }
    let pattern: RegExp;
    try {
      pattern = new RegExp(input.grep, input.ignore_case ? 'iu' : 'u');
    } catch (err) {
      throw invalidInput(`grep: not a valid regular expression: ${(err as Error).message}`);
    }
    const page = spool.read(input.output_id, host.alias, input.stream, 0, 0);
    const found = spool.grep(input.output_id, host.alias, input.stream, pattern, input.context, input.max_matches);
    return Promise.resolve({
      output_id: input.output_id,
      stream: input.stream,
      total_bytes: page.total_bytes,
      produced_bytes: page.produced_bytes,
      offset: null,
      content: null,
      next_offset: null,
      ...found,
    });
  },
  summarize: (out) => {
    if (out.matches === null) {
      const more = out.next_offset === null ? '' : ` (more: offset ${out.next_offset})`;
      return `${out.output_id} ${out.stream} bytes ${out.offset ?? 0}-${(out.offset ?? 0) + Buffer.byteLength(out.content ?? '')} of ${out.total_bytes}${more}\n${out.content ?? ''}`;
    }
    const lines = out.matches.map((m) => `${m.match ? '>' : ' '}${String(m.line).padStart(7)}: ${m.text}`);
    return `${out.match_count ?? 0} matching line(s)${out.truncated ? ' (more not shown)' : ''} in ${out.output_id} ${out.stream}\n${lines.join('\n')}`;
  },
});

const broadcastResult = z.object({
  host: z.string(),
  ok: z.boolean().describe('The command ran (whatever its exit code); false when sshgate could not run it on this host.'),
  exit_code: z.number().int().nullable(),
  signal: z.string().nullable(),
  stdout: z.string(),
  stderr: z.string(),
  truncated: z.boolean(),
  duration_ms: z.number().int(),
  error: z.object({ code: z.string(), message: z.string() }).nullable(),
});

export const broadcast = defineTool({
  name: 'ssh_broadcast',
  title: 'Run one command on many hosts',
  description:
    'Run the same command on several hosts at once, chosen by alias (hosts) and/or label (labels), with bounded concurrency. ' +
    "Each host's policy applies to it alone (tier, toggles, command rules, roots, rate limits); a host that refuses, fails or " +
    "times out gets its own error and never fails the others. Output per host is capped (max_output_bytes); use ssh_exec on " +
    'one host to see more. Hosts that require human approval for the command are reported, not run.',
  group: 'exec',
  tier: 'exec',
  kind: 'exec',
  effects: { destructive: true, idempotent: false },
  input: z.object({
    command: z.string().min(1).describe('The command line, in POSIX sh syntax (checked against each host\'s command policy).'),
    hosts: z.array(hostAlias).optional().describe('Host aliases.'),
    labels: z.array(z.string()).optional().describe('Every host carrying one of these labels.'),
    concurrency: z.number().int().min(1).max(64).default(8).describe('Hosts worked on at once.'),
    timeout_ms: z.number().int().min(100).optional().describe('Time limit of the whole call (all hosts run in parallel).'),
    max_output_bytes: z.number().int().min(256).max(1024 * 1024).default(16 * 1024).describe('Bytes kept per stream per host.'),
  }),
  output: z.object({
    results: z.array(broadcastResult),
    ok_count: z.number().int(),
    failed_count: z.number().int(),
    duration_ms: z.number().int(),
  }),
  timeoutMs: ({ timeout_ms }) => timeout_ms,
  async run(input, ctx) {
    const started = performance.now();
    const selected = new Map<string, ResolvedHost | null>();
    for (const alias of input.hosts ?? []) selected.set(alias, ctx.hosts.get(alias) ?? null);
    for (const label of input.labels ?? []) {
      for (const host of ctx.hosts.values()) if (host.labels.includes(label)) selected.set(host.alias, host);
    }
    if (selected.size === 0) throw invalidInput('no host selected: give hosts (aliases) and/or labels that match configured hosts');
    const queue = [...selected.entries()];
    const results: z.infer<typeof broadcastResult>[] = [];
    const worker = async (): Promise<void> => {
      for (let next = queue.shift(); next !== undefined; next = queue.shift()) {
        const [alias, host] = next;
        const hostStarted = performance.now();
        const failed = (code: string, message: string): z.infer<typeof broadcastResult> => ({
          host: alias,
          ok: false,
          exit_code: null,
          signal: null,
          stdout: '',
          stderr: '',
          truncated: false,
          duration_ms: Math.round(performance.now() - hostStarted),
          error: { code, message },
        });
        if (host === null) {
          results.push(failed('HOST_NOT_CONFIGURED', `host ${alias} is not configured`));
          continue;
        }
        let release: (() => void) | null = null;
        try {
          release = ctx.authorize(exec, { host: alias, command: input.command }, host);
          const r = await ctx.remote.exec(host, input.command, { maxOutputBytes: input.max_output_bytes });
          results.push({
            host: alias,
            ok: true,
            exit_code: r.exit_code,
            signal: r.signal,
            stdout: r.stdout,
            stderr: r.stderr,
            truncated: r.truncated,
            duration_ms: r.duration_ms,
            error: null,
          });
        } catch (err) {
          const e = err instanceof SshgateError ? err : new SshgateError('INTERNAL', 'unexpected failure on this host');
          results.push(failed(e.code, e.message));
        } finally {
          release?.();
        }
      }
    };
    await Promise.all(Array.from({ length: Math.min(input.concurrency, queue.length) }, worker));
    const order = [...selected.keys()];
    results.sort((a, b) => order.indexOf(a.host) - order.indexOf(b.host));
    const okCount = results.filter((r) => r.ok).length;
    return { results, ok_count: okCount, failed_count: results.length - okCount, duration_ms: Math.round(performance.now() - started) };
  },
  summarize: (out) =>
    [
      `${out.ok_count} host(s) ran the command, ${out.failed_count} could not (${out.duration_ms} ms)`,
      ...out.results.map((r) =>
        r.ok
          ? `--- ${r.host}: exit ${r.exit_code ?? r.signal ?? '?'} in ${r.duration_ms} ms${r.truncated ? ' (truncated)' : ''}\n${r.stdout}${r.stderr === '' ? '' : `[stderr]\n${r.stderr}`}`
          : `--- ${r.host}: ${r.error?.code ?? 'ERROR'}: ${r.error?.message ?? ''}`,
      ),
    ].join('\n'),
});

export const execTools = [exec, runTemplate, readOutput, broadcast] as const;
