// The files group: list, stat, read and write over SFTP, every path confined to the host's roots.
import { createHash } from 'node:crypto';
import picomatch from 'picomatch';
import { z } from 'zod';
import { invalidInput } from '../errors.js';
import { defineTool } from './define-tool.js';
import { hostAlias, octalMode, readRangeShape, remotePath, sha256Field } from './fields.js';
import { requireHost } from './hosts.js';
import { policyPath } from './file-ops.js';

const entryType = z.enum(['file', 'directory', 'symlink', 'fifo', 'socket', 'block', 'char', 'other']);

const entrySchema = z.object({
  name: z.string(),
  type: entryType,
  size: z.number(),
  mode: z.string().describe('Permission bits in octal, e.g. 0644.'),
  permissions: z.string().describe('Permission bits as ls -l shows them, e.g. rw-r--r--.'),
  uid: z.number(),
  gid: z.number(),
  mtime: z.string().describe('Last modification, ISO 8601 UTC.'),
  link_target: z.string().nullable().describe('For a symlink, what it points to.'),
});

export const listDirectory = defineTool({
  name: 'ssh_list_directory',
  title: 'List a remote directory',
  description:
    'List the entries of a directory on a host, sorted by name, with type, size, permissions, owner ids, modification time and ' +
    'symlink targets. Hidden entries (dotfiles) are left out unless all is true. Paginated: when has_more is true, call again with ' +
    'offset = offset + limit.',
  group: 'files',
  tier: 'read',
  kind: 'sftp_read',
  effects: { destructive: false, idempotent: true },
  input: z.object({
    host: hostAlias,
    path: remotePath,
    all: z.boolean().default(false).describe('Include entries whose names start with a dot.'),
    offset: z.number().int().min(0).default(0),
    limit: z.number().int().min(1).max(1000).default(200),
  }),
  output: z.object({
    path: z.string().describe('Real path of the directory listed.'),
    entries: z.array(entrySchema),
    total: z.number().int().describe('Entries in the directory (after the dotfile filter).'),
    offset: z.number().int(),
    has_more: z.boolean(),
  }),
  policy: ({ path }) => ({ paths: [{ path: policyPath(path), access: 'read' }] }),
  async run({ path, all, offset, limit }, ctx) {
    const listing = await ctx.remote.listDirectory(requireHost(ctx.host), path);
    const visible = listing.entries.filter((e) => all || !e.name.startsWith('.'));
    const page = visible.slice(offset, offset + limit);
    return { path: listing.path, entries: page, total: visible.length, offset, has_more: offset + page.length < visible.length };
  },
  summarize: (out) => {
    const lines = out.entries.map(
      (e) => `${e.type === 'directory' ? 'd' : e.type === 'symlink' ? 'l' : '-'}${e.permissions} ${String(e.size).padStart(10)} ${e.mtime} ${e.name}${e.link_target === null ? '' : ` -> ${e.link_target}`}`,
    );
    const tail = out.has_more ? `\n(${out.total - out.offset - out.entries.length} more; call again with offset ${out.offset + out.entries.length})` : '';
    return `${out.path}: ${out.total} entries\n${lines.join('\n')}${tail}`;
  },
});

export const getFileInfo = defineTool({
  name: 'ssh_get_file_info',
  title: 'Get file metadata',
  description:
    'Stat a path on a host: type, size, permissions, owner ids and modification time. A symlink is described as a link (with its ' +
    'target and the type of what it points to) unless follow_symlinks is true.',
  group: 'files',
  tier: 'read',
  kind: 'sftp_read',
  effects: { destructive: false, idempotent: true },
  input: z.object({
    host: hostAlias,
    path: remotePath,
    follow_symlinks: z.boolean().default(false),
  }),
  output: entrySchema.extend({
    path: z.string(),
    target_type: entryType.nullable().describe('For a symlink, the type of its target; null when it dangles.'),
  }),
  policy: ({ path }) => ({ paths: [{ path: policyPath(path), access: 'read' }] }),
  async run({ path, follow_symlinks }, ctx) {
    return ctx.remote.fileInfo(requireHost(ctx.host), path, follow_symlinks);
  },
  summarize: (out) =>
    `${out.path}: ${out.type}, ${out.size} bytes, mode ${out.mode} (${out.permissions}), uid ${out.uid} gid ${out.gid}, modified ${out.mtime}` +
    (out.link_target === null ? '' : `, -> ${out.link_target} (${out.target_type ?? 'dangling'})`),
});

export const readFile = defineTool({
  name: 'ssh_read_file',
  title: 'Read a remote file',
  description:
    'Read a text file on a host over SFTP: the whole file, a line range (start_line, line_count) or a byte range (offset), capped at ' +
    'max_bytes. Reports the file size and, when the file was read to its end, its sha256 (pass it as expected_sha256 to ' +
    'ssh_write_file to make sure nobody changed the file in between). If truncated is true, read the next part with a later ' +
    'start_line or with offset = next_offset. Binary files need encoding "base64".',
  group: 'files',
  tier: 'read',
  kind: 'sftp_read',
  effects: { destructive: false, idempotent: true },
  input: z.object({
    host: hostAlias,
    path: remotePath,
    ...readRangeShape,
    redact: z
      .boolean()
      .default(false)
      .describe('Replace secret values with <redacted:sha256:XXXXXXXX len:N> markers, so two secrets can be told apart (the host may force this).'),
  }),
  output: z.object({
    path: z.string(),
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
  policy: ({ path }) => ({ paths: [{ path: policyPath(path), access: 'read' }] }),
  // Secrets are always masked; digest markers when asked for, or when the host lists the path in redact_paths.
  redaction: ({ path, redact }, host) => (redact || (host !== null && host.redactPaths.length > 0 && picomatch(host.redactPaths, { dot: true })(path)) ? 'digest' : 'kind'),
  async run(input, ctx) {
    if (input.offset !== undefined && (input.start_line !== undefined || input.line_count !== undefined)) {
      throw invalidInput('offset cannot be combined with start_line or line_count: use one kind of range');
    }
    const host = requireHost(ctx.host);
    return ctx.remote.readFile(host, input.path, {
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
    return `${out.path}${range}: ${out.bytes} of ${out.size} bytes${more}${out.sha256 === null ? '' : `, sha256 ${out.sha256}`}\n${out.content}`;
  },
});

export const writeFile = defineTool({
  name: 'ssh_write_file',
  title: 'Write a remote file',
  description:
    'Create or replace a file on a host, atomically: the content goes to a temporary file in the same directory, its size (and, ' +
    'up to 8 MiB, its sha256 read back) is verified, then it is renamed over the target, so readers never see a half-written ' +
    'file and a failure (a full disk included) leaves the old file intact and is reported. An existing file keeps its mode, ' +
    'owner and group. Pass expected_sha256 (from ssh_read_file) to refuse the write if the file changed since you read it; ' +
    'create_parents to create missing directories; backup to keep the old content as <path>.sshgate-bak-<UTC timestamp>.',
  group: 'files',
  tier: 'write',
  kind: 'sftp_write',
  effects: { destructive: true, idempotent: true },
  input: z.object({
    host: hostAlias,
    path: remotePath,
    content: z.string().describe('The new content of the file.'),
    encoding: z.enum(['utf8', 'base64']).default('utf8').describe('How content is encoded (base64 for binary content).'),
    mode: octalMode.optional().describe('Permission bits in octal for the file (default: keep the existing mode, or 0644 for a new file).'),
    expected_sha256: sha256Field.optional().describe('Refuse the write unless the current file has this sha256.'),
    create_parents: z.boolean().default(false).describe('Create missing parent directories (mode 0755).'),
    backup: z.boolean().default(false).describe('Keep the previous content as <path>.sshgate-bak-<UTC timestamp> (a hard link where possible).'),
  }),
  output: z.object({
    path: z.string(),
    bytes: z.number(),
    sha256: z.string(),
    created: z.boolean(),
    mode: z.string(),
    owner_preserved: z.boolean().describe('False when the remote account could not give the new file the old owner and group.'),
    verified: z.enum(['size', 'size+sha256']).describe('What was checked on the written data before it replaced the file.'),
    backup_path: z.string().nullable(),
    created_directories: z.array(z.string()).describe('Parent directories created (create_parents).'),
  }),
  policy: ({ path }) => ({ paths: [{ path: policyPath(path), access: 'write' }] }),
  async run(input, ctx) {
    const data = Buffer.from(input.content, input.encoding);
    if (data.length > ctx.limits.maxWriteBytes) {
      throw invalidInput(`content is ${data.length} bytes; the limit is ${ctx.limits.maxWriteBytes} (limits.max_write_bytes)`);
    }
    const outcome = await ctx.remote.replaceFile(requireHost(ctx.host), input.path, data, {
      createParents: input.create_parents,
      backup: input.backup,
      ...(input.mode === undefined ? {} : { mode: parseInt(input.mode, 8) }),
      ...(input.expected_sha256 === undefined ? {} : { expectedSha256: input.expected_sha256 }),
    });
    return {
      path: outcome.path,
      bytes: outcome.bytes,
      sha256: outcome.sha256 ?? createHash('sha256').update(data).digest('hex'),
      created: outcome.created,
      mode: outcome.mode.toString(8).padStart(4, '0'),
      owner_preserved: outcome.owner_preserved,
      verified: outcome.verified,
      backup_path: outcome.backup_path,
      created_directories: outcome.created_directories,
    };
  },
  summarize: (out) =>
    `${out.created ? 'Created' : 'Replaced'} ${out.path}: ${out.bytes} bytes, mode ${out.mode}, sha256 ${out.sha256} (verified ${out.verified})` +
    (out.backup_path === null ? '' : `, backup ${out.backup_path}`) +
    (out.created_directories.length === 0 ? '' : `, created ${out.created_directories.join(', ')}`),
});

export const fileTools = [listDirectory, getFileInfo, readFile, writeFile] as const;
