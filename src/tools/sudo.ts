// The sudo group: a command, a file read and an atomic file write as root, under the same command and path policy.
import { z } from 'zod';
import { invalidInput } from '../errors.js';
import { defineTool } from './define-tool.js';
import { execResultShape, hostAlias, octalMode, readRangeShape, remotePath, sha256Field } from './fields.js';
import { requireHost } from './hosts.js';

const SUDO_NOTE =
  'sudo runs without a TTY; the password (if the host needs one) comes from the operator\'s config and is never shown to you. ' +
  'If sudo refuses (wrong or missing password, requiretty, not a sudoer) the call fails with SUDO_FAILED and nothing ran as root.';

export const sudoExec = defineTool({
  name: 'ssh_sudo_exec',
  title: 'Run a command as root',
  description:
    'Run one shell command as root (sudo, then bash -c) on a host and wait for it. stdin is closed. A non-zero exit_code is a ' +
    'normal result. On timeout (timeout_ms, default 60 s) the command is stopped and the partial output is returned with ' +
    'timed_out. stdout and stderr are capped (head and tail kept, truncated true). The command must pass the host\'s command ' +
    `policy, and cwd its roots. ${SUDO_NOTE}`,
  group: 'sudo',
  tier: 'sudo',
  kind: 'exec',
  effects: { destructive: true, idempotent: false },
  input: z.object({
    host: hostAlias,
    command: z.string().min(1).describe('The command line, in bash syntax; it runs as root.'),
    cwd: remotePath.optional().describe('Working directory (absolute; must lie inside the host\'s roots), entered as root.'),
    timeout_ms: z.number().int().min(100).optional().describe('Stop the command after this long (default 60000; the server caps it).'),
    max_output_bytes: z.number().int().min(1024).optional().describe('Bytes kept per stream (head and tail); the server caps it.'),
  }),
  output: z.object(execResultShape),
  policy: ({ command, cwd }) => ({ command, ...(cwd === undefined ? {} : { cwd }) }),
  timeoutMs: ({ timeout_ms }) => timeout_ms,
  async run(input, ctx) {
    return ctx.remote.sudoExec(requireHost(ctx.host), input.command, {
      ...(input.cwd === undefined ? {} : { cwd: input.cwd }),
      maxOutputBytes: Math.min(input.max_output_bytes ?? ctx.limits.maxOutputBytes, ctx.limits.maxOutputBytes),
      timeoutMs: ctx.timeoutMs,
    });
  },
  summarize: (out) => {
    const status = out.exit_code === null ? `killed by ${out.signal ?? 'a signal'}` : `exit ${out.exit_code}`;
    const parts = [`(as root) ${status} in ${out.duration_ms} ms${out.truncated ? ' (output truncated)' : ''}`];
    if (out.stdout !== '') parts.push(`--- stdout ---\n${out.stdout}`);
    if (out.stderr !== '') parts.push(`--- stderr ---\n${out.stderr}`);
    return parts.join('\n');
  },
});

export const sudoReadFile = defineTool({
  name: 'ssh_sudo_read_file',
  title: 'Read a file as root',
  description:
    'Read a file that only root may read (for example under /etc), with the same parameters and output as ssh_read_file: the ' +
    'whole file, a line range (start_line, line_count) or a byte range (offset), capped at max_bytes, with its size and, when ' +
    'read to its end, its sha256 (pass it as expected_sha256 to ssh_sudo_write_file). Symlinks are resolved as root and the real ' +
    `path must lie inside the host's roots. Use ssh_read_file when the login account can read the file. ${SUDO_NOTE}`,
  group: 'sudo',
  tier: 'sudo',
  kind: 'sftp_read',
  effects: { destructive: false, idempotent: true },
  input: z.object({
    host: hostAlias,
    path: remotePath,
    ...readRangeShape,
  }),
  output: z.object({
    path: z.string().describe('Real path of the file read.'),
    size: z.number().describe('Size of the whole file in bytes.'),
    content: z.string(),
    encoding: z.enum(['utf8', 'base64']),
    bytes: z.number().describe('Bytes returned in content.'),
    truncated: z.boolean().describe('True when max_bytes cut the content short.'),
    start_line: z.number().nullable(),
    end_line: z.number().nullable(),
    sha256: z.string().nullable().describe('sha256 of the whole file, when it was read to its end.'),
    next_offset: z.number().nullable().describe('Byte offset to continue from after a truncated byte-range read.'),
  }),
  policy: ({ path }) => ({ paths: [{ path, access: 'read' }] }),
  async run(input, ctx) {
    if (input.offset !== undefined && (input.start_line !== undefined || input.line_count !== undefined)) {
      throw invalidInput('offset cannot be combined with start_line or line_count: use one kind of range');
    }
    return ctx.remote.sudoReadFile(requireHost(ctx.host), input.path, {
      ...(input.start_line === undefined ? {} : { startLine: input.start_line }),
      ...(input.line_count === undefined ? {} : { lineCount: input.line_count }),
      ...(input.offset === undefined ? {} : { offset: input.offset }),
      maxBytes: Math.min(input.max_bytes ?? ctx.limits.maxReadBytes, ctx.limits.maxReadBytes),
      encoding: input.encoding,
    });
  },
  summarize: (out) => {
    const range = out.start_line === null ? '' : ` lines ${out.start_line}-${out.end_line ?? out.start_line}`;
    const more = out.truncated ? ` (truncated${out.next_offset === null ? '' : `; continue at offset ${out.next_offset}`})` : '';
    return `(as root) ${out.path}${range}: ${out.bytes} of ${out.size} bytes${more}${out.sha256 === null ? '' : `, sha256 ${out.sha256}`}\n${out.content}`;
  },
});

export const sudoWriteFile = defineTool({
  name: 'ssh_sudo_write_file',
  title: 'Write a file as root',
  description:
    'Create or replace a file that only root may write, atomically, with the same parameters as ssh_write_file: the content goes ' +
    'to a temporary file in the same directory, its size and sha256 are verified, the existing file\'s owner and mode are copied ' +
    '(or mode is applied; a new file gets 0644 and root as owner), then it is renamed over the target; on failure the old file is ' +
    'untouched. Pass expected_sha256 (from ssh_sudo_read_file) to refuse the write if the file changed since you read it. ' +
    `Symlinks are resolved as root and must stay inside the host's roots. ${SUDO_NOTE}`,
  group: 'sudo',
  tier: 'sudo',
  kind: 'sftp_write',
  effects: { destructive: true, idempotent: true },
  input: z.object({
    host: hostAlias,
    path: remotePath,
    content: z.string().describe('The new content of the file.'),
    encoding: z.enum(['utf8', 'base64']).default('utf8').describe('How content is encoded.'),
    mode: octalMode.optional().describe('Permission bits in octal (default: keep the existing mode, or 0644 for a new file).'),
    expected_sha256: sha256Field.optional().describe('Refuse the write unless the current file has this sha256.'),
  }),
  output: z.object({
    path: z.string().describe('Real path written.'),
    bytes: z.number(),
    sha256: z.string().describe('sha256 of the content, verified on the host before the rename.'),
    created: z.boolean(),
    mode: z.string().describe('Permission bits in octal after the write.'),
    uid: z.number().describe('Owner after the write (the old owner for a replaced file).'),
    gid: z.number(),
  }),
  policy: ({ path }) => ({ paths: [{ path, access: 'write' }] }),
  async run(input, ctx) {
    const data = Buffer.from(input.content, input.encoding);
    if (data.length > ctx.limits.maxWriteBytes) {
      throw invalidInput(`content is ${data.length} bytes; the limit is ${ctx.limits.maxWriteBytes} (limits.max_write_bytes)`);
    }
    const outcome = await ctx.remote.sudoWriteFile(requireHost(ctx.host), input.path, data, {
      ...(input.mode === undefined ? {} : { mode: parseInt(input.mode, 8) }),
      ...(input.expected_sha256 === undefined ? {} : { expectedSha256: input.expected_sha256 }),
    });
    return { ...outcome, mode: outcome.mode.toString(8).padStart(4, '0') };
  },
  summarize: (out) =>
    `(as root) ${out.created ? 'Created' : 'Replaced'} ${out.path}: ${out.bytes} bytes, mode ${out.mode}, owner ${out.uid}:${out.gid}, sha256 ${out.sha256}`,
});

export const sudoTools = [sudoExec, sudoReadFile, sudoWriteFile] as const;
