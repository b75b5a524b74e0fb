// Transfer tools: upload, download, host to host. The bytes stream between the two ends through sshgate;
// only a summary (paths, sizes, sha256) reaches the model.
import { z } from 'zod';
import { invalidInput } from '../errors.js';
import type { TransferOptions, TransferOutcome } from '../ssh/transfer.js';
import { defineTool } from './define-tool.js';
import { hostAlias, remotePath } from './fields.js';
import { requireHost } from './hosts.js';

/** Files listed in a result; the rest are counted (a tree can hold thousands). */
const LISTED_FILES = 100;
const LISTED_SKIPPED = 50;
/** Default timeout of a transfer call (a large file takes long); the server's limits.max_timeout_ms caps it. */
const TRANSFER_TIMEOUT_MS = 3_600_000;

const localPath = z
  .string()
  .min(1)
  .max(4096)
  .describe('Absolute path on the machine sshgate runs on (or ~/...). It must lie inside the operator\'s local_paths, also after symlinks are resolved.');

const globList = z.array(z.string().min(1).max(1024)).max(100).default([]);

/** Parameters every transfer tool shares. */
const commonInput = {
  overwrite: z.boolean().default(false).describe('Replace an existing destination file. Default false: an existing destination is refused (ALREADY_EXISTS) before anything is copied.'),
  resume: z
    .boolean()
    .default(false)
    .describe(
      'Make the transfer resumable: data goes to a hidden .<name>.sshgate-partial file beside the destination, which is kept if the connection drops. ' +
        'Calling again with resume: true verifies the partial file against the source (sha256 of the prefix on both sides) and continues from there.',
    ),
  recursive: z.boolean().default(false).describe('Copy a directory tree: its contents go into the destination directory (created if missing). Symlinks and special files are skipped.'),
  include: globList.describe('With recursive: only files matching one of these globs (relative to the source directory; a glob without "/" matches the file name, e.g. "*.log").'),
  exclude: globList.describe('With recursive: leave out files and directories matching one of these globs.'),
  verify_sha256: z
    .boolean()
    .default(false)
    .describe('Read each destination file back and compare its sha256 with the source\'s (always done for files up to 8 MiB; costs a second read for larger ones).'),
  timeout_ms: z.number().int().min(1000).optional().describe(`Give up (and remove the temp file) after this long (default ${TRANSFER_TIMEOUT_MS} ms; the server caps it).`),
};

const fileSchema = z.object({
  source: z.string(),
  destination: z.string(),
  bytes: z.number().int(),
  sha256: z.string().describe('sha256 of the content, computed while streaming from the source.'),
  resumed_from: z.number().int().describe('Bytes kept from a verified partial file (0: copied from the start).'),
  verified: z.enum(['size', 'size+sha256']).describe('What was checked on the destination before it was moved into place.'),
  streamed: z.boolean().describe('True when the source host sent the file as one stream (cat over an exec channel, faster), false for SFTP reads.'),
});

const outputSchema = z.object({
  source: z.string().describe('Source path (real path, symlinks resolved).'),
  destination: z.string().describe('Destination path (real path).'),
  files: z.array(fileSchema).describe(`Files copied (the first ${LISTED_FILES}).`),
  file_count: z.number().int(),
  files_truncated: z.boolean().describe(`True when more than ${LISTED_FILES} files were copied: files lists only the first ones.`),
  skipped: z.array(z.object({ path: z.string(), reason: z.string() })).describe('Entries of a tree that were left out, and why.'),
  sha256: z.string().nullable().describe('sha256 of the file, for a single-file transfer.'),
  bytes: z.number().int().describe('Total size of the files copied.'),
  bytes_transferred: z.number().int().describe('Bytes sent in this call (a resumed prefix is not sent again).'),
  duration_ms: z.number().int(),
  mib_per_s: z.number(),
});

type TransferOutput = z.output<typeof outputSchema>;

function options(input: { overwrite: boolean; resume: boolean; recursive: boolean; include: string[]; exclude: string[]; verify_sha256: boolean }): TransferOptions {
  if (!input.recursive && (input.include.length > 0 || input.exclude.length > 0)) {
    throw invalidInput('include and exclude select files of a tree: pass recursive: true with them');
  }
  return { overwrite: input.overwrite, resume: input.resume, recursive: input.recursive, include: input.include, exclude: input.exclude, verifySha256: input.verify_sha256 };
}

function present(out: TransferOutcome, recursive: boolean): TransferOutput {
  return {
    source: out.source,
    destination: out.destination,
    files: out.files.slice(0, LISTED_FILES),
    file_count: out.files.length,
    files_truncated: out.files.length > LISTED_FILES,
    skipped: out.skipped.slice(0, LISTED_SKIPPED),
    sha256: !recursive && out.files.length === 1 ? (out.files[0]?.sha256 ?? null) : null,
    bytes: out.bytes,
    bytes_transferred: out.bytes_transferred,
    duration_ms: out.duration_ms,
    mib_per_s: out.mib_per_s,
  };
}

function summary(verb: string, from: string, to: string, out: TransferOutput): string {
  const size = `${out.bytes} bytes (${(out.bytes / 2 ** 20).toFixed(1)} MiB)`;
  const speed = `${(out.duration_ms / 1000).toFixed(1)} s, ${out.mib_per_s} MiB/s`;
  const resumed = out.files.reduce((n, f) => n + f.resumed_from, 0);
  const head =
    out.sha256 === null
      ? `${verb} ${out.file_count} file(s) from ${from} to ${to}: ${size} in ${speed}`
      : `${verb} ${from} to ${to}: ${size} in ${speed}, sha256 ${out.sha256}`;
  const lines = [head + (resumed > 0 ? ` (resumed: ${resumed} bytes kept from the partial file)` : '')];
  if (out.sha256 === null) for (const f of out.files) lines.push(`  ${f.destination}  ${f.bytes}  ${f.sha256}`);
  if (out.files_truncated) lines.push(`  ... and ${out.file_count - out.files.length} more`);
  for (const s of out.skipped) lines.push(`  skipped ${s.path}: ${s.reason}`);
  return lines.join('\n');
}

export const uploadFile = defineTool({
  name: 'ssh_upload_file',
  title: 'Upload a file to a host',
  description:
    'Copy a file (or, with recursive, a directory tree) from the machine sshgate runs on to a host, streamed over SFTP; the content never ' +
    'passes through the conversation. local_path must lie inside the operator\'s local_paths. The destination is written atomically: a ' +
    'temp file beside it, its size checked (and its sha256 read back, for files up to 8 MiB or with verify_sha256), then renamed into ' +
    'place, so a failure never leaves a half-written file. The result gives each file\'s sha256, computed while streaming. An existing ' +
    'remote directory as remote_path receives the file under its own name. An existing file is refused unless overwrite is true. For big ' +
    'files on unreliable links pass resume: true, and call again with resume: true after a dropped connection. Progress is reported ' +
    'when the client asks for it.',
  group: 'files',
  tier: 'write',
  kind: 'sftp_write',
  effects: { destructive: true, idempotent: true },
  input: z.object({
    host: hostAlias,
    local_path: localPath.describe('Local file or directory to upload (inside local_paths).'),
    remote_path: remotePath.describe('Destination on the host: a file path, or an existing directory. It must lie inside the host\'s allowed roots, if any.'),
    ...commonInput,
  }),
  output: outputSchema,
  policy: ({ remote_path }) => ({ paths: [{ path: remote_path, access: 'write' }] }),
  timeoutMs: ({ timeout_ms }) => timeout_ms ?? TRANSFER_TIMEOUT_MS,
  async run(input, ctx) {
    const host = requireHost(ctx.host);
    const out = await ctx.remote.upload(host, input.local_path, input.remote_path, options(input));
    return present(out, input.recursive);
  },
  summarize: (out) => summary('Uploaded', out.source, out.destination, out),
});

export const downloadFile = defineTool({
  name: 'ssh_download_file',
  title: 'Download a file from a host',
  description:
    'Copy a file (or, with recursive, a directory tree) from a host to the machine sshgate runs on, streamed over SFTP; the content never ' +
    'passes through the conversation (read it with ssh_read_file if you need to see it). local_path must lie inside the operator\'s ' +
    'local_paths. Written atomically: a temp file, its size checked (sha256 read back for files up to 8 MiB or with verify_sha256), then ' +
    'renamed into place. An existing local directory receives the file under its own name; an existing file is refused unless overwrite ' +
    'is true. resume: true makes a large download resumable after a dropped connection.',
  group: 'files',
  tier: 'read',
  kind: 'sftp_read',
  effects: { destructive: false, idempotent: true },
  input: z.object({
    host: hostAlias,
    remote_path: remotePath.describe('File or directory to download from the host. It must lie inside the host\'s allowed roots, if any.'),
    local_path: localPath.describe('Local destination: a file path, or an existing directory (inside local_paths).'),
    ...commonInput,
  }),
  output: outputSchema,
  policy: ({ remote_path }) => ({ paths: [{ path: remote_path, access: 'read' }] }),
  timeoutMs: ({ timeout_ms }) => timeout_ms ?? TRANSFER_TIMEOUT_MS,
  async run(input, ctx) {
    const host = requireHost(ctx.host);
    const out = await ctx.remote.download(host, input.remote_path, input.local_path, options(input));
    return present(out, input.recursive);
  },
  summarize: (out) => summary('Downloaded', out.source, out.destination, out),
});

export const transferFile = defineTool({
  name: 'ssh_transfer_file',
  title: 'Copy a file between hosts',
  description:
    'Copy a file (or, with recursive, a directory tree) from one configured host to another, streamed through sshgate with bounded memory; ' +
    'the content never passes through the conversation. The source host must allow reading source_path and the destination host writing ' +
    'destination_path (tiers, toggles and path rules of each host apply; a host that requires approval is refused). Written atomically on ' +
    'the destination: a temp file, its size checked (sha256 read back for files up to 8 MiB or with verify_sha256), then renamed into ' +
    'place. An existing file is refused unless overwrite is true; resume: true makes it resumable after a dropped connection.',
  group: 'files',
  tier: 'write',
  kind: 'sftp_write',
  effects: { destructive: true, idempotent: true },
  input: z.object({
    source_host: hostAlias.describe('Alias of the host to copy from, as listed by ssh_list_hosts.'),
    source_path: remotePath.describe('File or directory on the source host.'),
    destination_host: hostAlias.describe('Alias of the host to copy to (may be the source host).'),
    destination_path: remotePath.describe('Destination on the destination host: a file path, or an existing directory.'),
    ...commonInput,
  }),
  output: outputSchema.extend({ source_host: z.string(), destination_host: z.string() }),
  timeoutMs: ({ timeout_ms }) => timeout_ms ?? TRANSFER_TIMEOUT_MS,
  async run(input, ctx) {
    // Not host-bound: each end gets the policy checks invokeTool gives `host`, for its own access.
    const source = ctx.authorizeHost(input.source_host, { tier: 'read', kind: 'sftp_read', paths: [{ path: input.source_path, access: 'read' }] });
    const destination = ctx.authorizeHost(input.destination_host, { tier: 'write', kind: 'sftp_write', paths: [{ path: input.destination_path, access: 'write' }] });
    const out = await ctx.remote.copyBetweenHosts(source, input.source_path, destination, input.destination_path, options(input));
    return { ...present(out, input.recursive), source_host: source.alias, destination_host: destination.alias };
  },
  summarize: (out) => summary('Copied', `${out.source_host}:${out.source}`, `${out.destination_host}:${out.destination}`, out),
});

export const transferTools = [uploadFile, downloadFile, transferFile] as const;
