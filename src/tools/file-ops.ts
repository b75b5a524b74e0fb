// File tools beyond list, read and write (issue 4): find, hash, diff, edit, patch, mkdir, remove, copy, move.
import { createHash } from 'node:crypto';
import { applyPatch, parsePatch, structuredPatch, formatPatch, type StructuredPatch, type StructuredPatchHunk } from 'diff';
import { z } from 'zod';
import { SshgateError, invalidInput } from '../errors.js';
import { isBinary } from '../ssh/file-ops.js';
import { normaliseWindowsPath } from '../ssh/personality.js';
import type { ResolvedHost } from '../config/load.js';
import { defineTool, type AnyTool, type ToolContext } from './define-tool.js';
import { hostAlias, octalMode, remotePath, sha256Field } from './fields.js';
import { requireHost } from './hosts.js';

const entryType = z.enum(['file', 'directory', 'symlink', 'fifo', 'socket', 'block', 'char', 'other']);

/** Longest diff text returned; the rest is cut with `diff_truncated: true`. */
const DIFF_OUTPUT_MAX = 256 * 1024;
/** A diff that takes longer than this is given up (very different large files). */
const DIFF_TIMEOUT_MS = 10_000;

/**
 * The path the lexical policy check sees. A Windows-shaped path (`C:\x`, `c:/x`, `/c:\x`) is given in its
 * canonical SFTP form `/C:/x`, so the check compares what the host will use; any other path is unchanged.
 * The handler checks the path again with the host's own personality (POSIX hosts refuse `C:\x` as relative).
 */
export function policyPath(path: string): string {
  if (!/^[\\/]?[A-Za-z]:([\\/]|$)/u.test(path)) return path;
  const normalised = normaliseWindowsPath(path);
  return normalised.ok ? normalised.path : path;
}

function lineOf(text: string, index: number): number {
  let line = 1;
  for (let i = text.indexOf('\n'); i !== -1 && i < index; i = text.indexOf('\n', i + 1)) line += 1;
  return line;
}

function quoteLine(line: string): string {
  return JSON.stringify(line.length > 120 ? `${line.slice(0, 120)}…` : line);
}

/** One exact replacement of ssh_edit_file. */
export interface TextEdit {
  old_text: string;
  new_text: string;
  replace_all?: boolean | undefined;
}

/**
 * Applies `edits` in order to `text`. Each `old_text` must occur exactly once in the text as the earlier
 * edits left it (overlapping occurrences count), unless `replace_all`; matching is exact, whitespace included.
 * Returns the new text and how many replacements each edit made.
 * @throws SshgateError INVALID_INPUT naming the edit (`edits[i]`), the occurrence count and lines, and, when
 *   the text is there with other whitespace, the lines where it is.
 */
export function applyEdits(text: string, edits: readonly TextEdit[]): { text: string; replacements: number[] } {
  let current = text;
  const replacements: number[] = [];
  for (const [i, edit] of edits.entries()) {
    const where = `edits[${i}]${i > 0 ? ' (applied after the edits before it)' : ''}`;
    if (edit.old_text === '') throw invalidInput(`edits[${i}].old_text is empty; give the exact text to replace`);
    const positions: number[] = [];
    for (let at = current.indexOf(edit.old_text); at !== -1; at = current.indexOf(edit.old_text, at + 1)) positions.push(at);
    if (positions.length === 0) {
      throw invalidInput(`${where}: old_text was not found${whitespaceHint(current, edit.old_text)}; copy it exactly from ssh_read_file, whitespace included`, { edit: i });
    }
    if (positions.length > 1 && edit.replace_all !== true) {
      const lines = positions.slice(0, 10).map((p) => lineOf(current, p));
      throw invalidInput(
        `${where}: old_text occurs ${positions.length} times (lines ${lines.join(', ')}${positions.length > 10 ? ', ...' : ''}); include more surrounding text to make it unique, or set replace_all: true`,
        { edit: i, occurrences: positions.length },
      );
    }
    if (edit.replace_all === true) {
      const parts = current.split(edit.old_text);
      replacements.push(parts.length - 1);
      current = parts.join(edit.new_text);
    } else {
      const at = positions[0] ?? 0;
      replacements.push(1);
      // Concatenation, not String.replace: `$&` and friends in new_text must stay literal.
      current = current.slice(0, at) + edit.new_text + current.slice(at + edit.old_text.length);
    }
  }
  return { text: current, replacements };
}

/** Says where `needle` occurs when whitespace is ignored (the usual cause of a miss). */
function whitespaceHint(text: string, needle: string): string {
  const squash = (s: string): string => s.replace(/\s+/gu, ' ').trim();
  const firstLine = squash(needle.split('\n').find((l) => l.trim() !== '') ?? '');
  if (firstLine === '') return '';
  const hits: number[] = [];
  for (const [n, line] of text.split('\n').entries()) {
    if (squash(line).includes(firstLine)) hits.push(n + 1);
    if (hits.length >= 5) break;
  }
  if (hits.length === 0) return '';
  return ` (its first line, with other whitespace, is at line${hits.length > 1 ? 's' : ''} ${hits.join(', ')})`;
}

function hunkHeader(h: StructuredPatchHunk): string {
  return `@@ -${h.oldStart},${h.oldLines} +${h.newStart},${h.newLines} @@`;
}

/** Why `hunk` does not fit `source` where its header says (diagnosis only; jsdiff decides). */
function explainHunk(source: string, hunk: StructuredPatchHunk): string {
  const lines = source.split('\n');
  const expected = hunk.lines.filter((l) => l.startsWith(' ') || l.startsWith('-'));
  const start = Math.max(0, hunk.oldStart - 1);
  for (const [j, line] of expected.entries()) {
    const actual = lines[start + j];
    const want = line.slice(1);
    const role = line.startsWith('-') ? 'a line to remove' : 'a context line';
    if (actual === undefined) return `the file has ${lines.length} lines, but the hunk expects ${role} ${quoteLine(want)} at line ${start + j + 1}`;
    if (actual.replace(/\r$/u, '') !== want.replace(/\r$/u, '')) {
      const result = hunk.lines.filter((l) => l.startsWith(' ') || l.startsWith('+')).map((l) => l.slice(1));
      const applied = result.every((l, k) => (lines[start + k] ?? '').replace(/\r$/u, '') === l.replace(/\r$/u, ''));
      if (applied) return 'the file already has the hunk\'s result at that place (was the patch applied already?)';
      return `line ${start + j + 1} of the file is ${quoteLine(actual)}, but the hunk expects ${role} ${quoteLine(want)}`;
    }
  }
  return 'its lines match at the line its header gives, but not in order with the hunks before it, or the end-of-file newline differs';
}

/**
 * Applies a unified diff of one file to `source` with jsdiff (exact context, no fuzz; file names in the
 * headers are ignored: the tool's `path` says which file). Returns the new text and the number of hunks.
 * @throws SshgateError INVALID_INPUT: the patch does not parse, has no hunk, touches several files, or a hunk
 *   does not apply (the message names the hunk, its header and why).
 */
export function applyUnifiedPatch(source: string, patch: string): { text: string; hunks: number } {
  let parsed: StructuredPatch[];
  try {
    parsed = parsePatch(patch);
  } catch (err) {
    throw invalidInput(`patch: cannot be parsed as a unified diff (${(err as Error).message})`);
  }
  const files = parsed.filter((p) => p.hunks.length > 0);
  if (files.length === 0) throw invalidInput('patch: holds no hunk (no "@@ -a,b +c,d @@" line); give a unified diff');
  if (files.length > 1) throw invalidInput(`patch: changes ${files.length} files; give the diff of one file, the one at path`);
  const filePatch = files[0] as StructuredPatch;
  const result = applyPatch(source, filePatch, { fuzzFactor: 0 });
  if (result !== false) return { text: result, hunks: filePatch.hunks.length };
  let failing = filePatch.hunks.length - 1;
  for (let k = 1; k <= filePatch.hunks.length; k += 1) {
    if (applyPatch(source, { ...filePatch, hunks: filePatch.hunks.slice(0, k) }, { fuzzFactor: 0 }) === false) {
      failing = k - 1;
      break;
    }
  }
  const hunk = filePatch.hunks[failing] as StructuredPatchHunk;
  throw invalidInput(
    `patch: hunk ${failing + 1} of ${filePatch.hunks.length} (${hunkHeader(hunk)}) does not apply: ${explainHunk(source, hunk)}; nothing was written`,
    { hunk: failing + 1, header: hunkHeader(hunk) },
  );
}

/** A unified diff of two texts, with counts; `null` when the diff took longer than {@link DIFF_TIMEOUT_MS}. */
export function unifiedDiff(
  oldLabel: string,
  newLabel: string,
  before: string,
  after: string,
  context: number,
): { diff: string; additions: number; deletions: number; truncated: boolean } | null {
  const patch = structuredPatch(oldLabel, newLabel, before, after, undefined, undefined, { context, timeout: DIFF_TIMEOUT_MS });
  if (patch === undefined) return null;
  let additions = 0;
  let deletions = 0;
  for (const hunk of patch.hunks) {
    for (const line of hunk.lines) {
      if (line.startsWith('+')) additions += 1;
      else if (line.startsWith('-')) deletions += 1;
    }
  }
  const text = patch.hunks.length === 0 ? '' : formatPatch(patch);
  const truncated = text.length > DIFF_OUTPUT_MAX;
  return { diff: truncated ? `${text.slice(0, DIFF_OUTPUT_MAX)}\n... (diff truncated)\n` : text, additions, deletions, truncated };
}

function diffOrRefuse(oldLabel: string, newLabel: string, before: string, after: string, context = 3): NonNullable<ReturnType<typeof unifiedDiff>> {
  const result = unifiedDiff(oldLabel, newLabel, before, after, context);
  if (result === null) throw new SshgateError('INVALID_INPUT', `the texts differ too much to diff within ${DIFF_TIMEOUT_MS / 1000} s; compare smaller files or use ssh_hash_file`);
  return result;
}

function parseTime(field: string, value: string | undefined): number | undefined {
  if (value === undefined) return undefined;
  const ms = Date.parse(value);
  if (Number.isNaN(ms)) throw invalidInput(`${field}: ${JSON.stringify(value)} is not an ISO 8601 date-time such as 2026-07-01T00:00:00Z`);
  return ms;
}

function resolveOther(ctx: ToolContext, host: ResolvedHost, alias: string | undefined): ResolvedHost {
  if (alias === undefined || alias === host.alias) return host;
  const other = ctx.inventory.resolve(alias);
  if (other === null) {
    throw new SshgateError('HOST_NOT_CONFIGURED', `other_host ${JSON.stringify(alias)} is not configured`, { hint: 'Call ssh_list_hosts to see the configured aliases.' });
  }
  return other;
}

const foundEntry = z.object({
  path: z.string(),
  type: entryType,
  size: z.number(),
  mode: z.string().describe('Permission bits in octal.'),
  mtime: z.string().describe('ISO 8601 UTC.'),
  link_target: z.string().nullable(),
  depth: z.number().int().describe('1 for entries directly in path.'),
});

export const findFiles = defineTool({
  name: 'ssh_find_files',
  title: 'Find remote files',
  description:
    'Search a directory tree on a host over SFTP (no remote command runs): entries whose name matches a glob (picomatch: *, ?, ' +
    '[...], {a,b}; a glob containing / is matched against the path relative to path, e.g. "**/*.log"), of a type, within ' +
    'max_depth levels, size bounds (bytes) and modification-time bounds (ISO 8601). Depth-first: the entries of a directory, ' +
    'sorted by name, come before those of its subdirectories. ' +
    'Symlinks are reported, not entered, unless follow_symlinks is true (then only those whose real path stays inside the ' +
    'allowed roots, each real directory once). Restricted paths are skipped. At most limit matches: when truncated is true, ' +
    'narrow the search (a deeper path, a stricter glob) rather than paging.',
  group: 'files',
  tier: 'read',
  kind: 'sftp_read',
  effects: { destructive: false, idempotent: true },
  input: z.object({
    host: hostAlias,
    path: remotePath.describe('Directory to search under (absolute).'),
    name: z.string().min(1).max(1024).optional().describe('Glob for the entry name, e.g. "*.conf"; with a slash, for the relative path.'),
    type: entryType.optional().describe('Only entries of this type.'),
    max_depth: z.number().int().min(1).max(1000).optional().describe('1 = entries directly in path; default: no limit.'),
    min_size: z.number().int().min(0).optional().describe('Smallest size in bytes (inclusive).'),
    max_size: z.number().int().min(0).optional().describe('Largest size in bytes (inclusive).'),
    modified_after: z.string().optional().describe('Only entries modified at or after this ISO 8601 time.'),
    modified_before: z.string().optional().describe('Only entries modified at or before this ISO 8601 time.'),
    follow_symlinks: z.boolean().default(false).describe('Enter symlinked directories that stay inside the allowed roots.'),
    limit: z.number().int().min(1).max(5000).default(200).describe('Most matches to return.'),
  }),
  output: z.object({
    path: z.string().describe('Real path searched.'),
    matches: z.array(foundEntry),
    count: z.number().int(),
    truncated: z.boolean().describe('True when the search stopped early; see truncated_reason.'),
    truncated_reason: z.enum(['limit', 'scan_limit']).nullable().describe('limit: more matches exist; scan_limit: the tree is too large to walk whole.'),
    scanned: z.number().int().describe('Entries examined.'),
    skipped: z.array(z.object({ path: z.string(), reason: z.string() })).describe('Entries not examined: restricted, unreadable, or symlinks out of the roots (first 50).'),
  }),
  policy: ({ path }) => ({ paths: [{ path: policyPath(path), access: 'read' }] }),
  async run(input, ctx) {
    const out = await ctx.remote.findFiles(requireHost(ctx.host), input.path, {
      ...(input.name === undefined ? {} : { name: input.name }),
      ...(input.type === undefined ? {} : { type: input.type }),
      ...(input.max_depth === undefined ? {} : { maxDepth: input.max_depth }),
      ...(input.min_size === undefined ? {} : { minSize: input.min_size }),
      ...(input.max_size === undefined ? {} : { maxSize: input.max_size }),
      ...optionalNumber('modifiedAfterMs', parseTime('modified_after', input.modified_after)),
      ...optionalNumber('modifiedBeforeMs', parseTime('modified_before', input.modified_before)),
      limit: input.limit,
      followSymlinks: input.follow_symlinks,
    });
    return { ...out, count: out.matches.length };
  },
  summarize: (out) => {
    const lines = out.matches.map((m) => `${m.type === 'directory' ? 'd' : m.type === 'symlink' ? 'l' : '-'} ${String(m.size).padStart(10)} ${m.mtime} ${m.path}${m.link_target === null ? '' : ` -> ${m.link_target}`}`);
    const more = out.truncated ? `\n(truncated: ${out.truncated_reason === 'limit' ? 'more matches exist; narrow the search' : 'the tree is too large; search a deeper path'})` : '';
    return `${out.count} match${out.count === 1 ? '' : 'es'} under ${out.path} (${out.scanned} entries examined)\n${lines.join('\n')}${more}`;
  },
});

function optionalNumber<K extends string>(key: K, value: number | undefined): Partial<Record<K, number>> {
  return value === undefined ? {} : ({ [key]: value } as Record<K, number>);
}

export const hashFile = defineTool({
  name: 'ssh_hash_file',
  title: 'Hash a remote file',
  description:
    'Compute the sha256 (default), sha512 or md5 of a file on a host. method auto streams the file over SFTP and hashes it here ' +
    '(works on any SFTP server), except that files of 16 MiB or more are hashed on the host with sha256sum/sha512sum/md5sum ' +
    '(PowerShell Get-FileHash on Windows) when the host allows commands, so the bytes do not cross the network. method sftp or ' +
    'remote forces one way. Use it to compare files across hosts or to check a transfer.',
  group: 'files',
  tier: 'read',
  kind: 'sftp_read',
  effects: { destructive: false, idempotent: true },
  input: z.object({
    host: hostAlias,
    path: remotePath,
    algorithm: z.enum(['sha256', 'sha512', 'md5']).default('sha256'),
    method: z.enum(['auto', 'sftp', 'remote']).default('auto').describe('auto, sftp (stream and hash here) or remote (hash command on the host).'),
  }),
  output: z.object({
    path: z.string(),
    algorithm: z.enum(['sha256', 'sha512', 'md5']),
    digest: z.string().describe('Lower-case hex.'),
    size: z.number().describe('Bytes hashed (for method sftp) or the size reported by the host.'),
    method: z.enum(['sftp', 'remote']).describe('How the digest was computed.'),
  }),
  policy: ({ path }) => ({ paths: [{ path: policyPath(path), access: 'read' }] }),
  async run(input, ctx) {
    return ctx.remote.hashFile(requireHost(ctx.host), input.path, { algorithm: input.algorithm, method: input.method });
  },
  summarize: (out) => `${out.algorithm} ${out.digest}  ${out.path} (${out.size} bytes, ${out.method})`,
});

export const diffFiles = defineTool({
  name: 'ssh_diff_files',
  title: 'Diff remote files',
  description:
    'Unified diff of a file on a host against another file (other_path, on the same host or on other_host) or against given ' +
    'text (text). Both sides must be at most the server\'s limits.max_diff_bytes. Binary files (NUL bytes or invalid UTF-8) are ' +
    'not diffed: binary is true and identical says whether they are equal. Long diffs are cut (diff_truncated).',
  group: 'files',
  tier: 'read',
  kind: 'sftp_read',
  effects: { destructive: false, idempotent: true },
  input: z.object({
    host: hostAlias,
    path: remotePath.describe('The old side of the diff.'),
    other_path: remotePath.optional().describe('The new side: a file on the same host, or on other_host.'),
    other_host: hostAlias.optional().describe('Host of other_path, when it is not host.'),
    text: z.string().optional().describe('The new side as text, instead of other_path.'),
    context_lines: z.number().int().min(0).max(100).default(3),
  }),
  output: z.object({
    path: z.string(),
    other: z.string().describe('host:path of the other side, or "(text)".'),
    identical: z.boolean(),
    binary: z.boolean(),
    diff: z.string().describe('Unified diff; empty when identical or binary.'),
    additions: z.number().int(),
    deletions: z.number().int(),
    diff_truncated: z.boolean(),
    sha256: z.string(),
    other_sha256: z.string(),
    size: z.number(),
    other_size: z.number(),
  }),
  policy: ({ host, path, other_path, other_host }) => ({
    paths: [
      { path: policyPath(path), access: 'read' as const },
      // other_path on another host is checked against that host's rules when the call runs.
      ...(other_path !== undefined && (other_host === undefined || other_host === host) ? [{ path: policyPath(other_path), access: 'read' as const }] : []),
    ],
  }),
  async run(input, ctx) {
    if ((input.other_path === undefined) === (input.text === undefined)) throw invalidInput('give exactly one of other_path or text');
    if (input.other_host !== undefined && input.other_path === undefined) throw invalidInput('other_host needs other_path');
    const host = requireHost(ctx.host);
    const left = await ctx.remote.snapshotFile(host, input.path, { secondary: false });
    let right: { data: Buffer; sha256: string; size: number };
    let other: string;
    if (input.other_path !== undefined) {
      const otherHost = resolveOther(ctx, host, input.other_host);
      const snap = await ctx.remote.snapshotFile(otherHost, input.other_path, { secondary: otherHost !== host });
      right = snap;
      other = `${otherHost.alias}:${snap.path}`;
    } else {
      const data = Buffer.from(input.text ?? '', 'utf8');
      const limit = ctx.remote.fileOpsLimits.maxDiffBytes;
      if (data.length > limit) throw invalidInput(`text is ${data.length} bytes; the limit is ${limit} (limits.max_diff_bytes)`);
      right = { data, sha256: createHash('sha256').update(data).digest('hex'), size: data.length };
      other = '(text)';
    }
    const identical = left.sha256 === right.sha256;
    const binary = isBinary(left.data) || isBinary(right.data);
    const base = { path: left.path, other, identical, binary, sha256: left.sha256, other_sha256: right.sha256, size: left.size, other_size: right.size };
    if (binary || identical) return { ...base, diff: '', additions: 0, deletions: 0, diff_truncated: false };
    const d = diffOrRefuse(`${host.alias}:${left.path}`, other, left.data.toString('utf8'), right.data.toString('utf8'), input.context_lines);
    return { ...base, diff: d.diff, additions: d.additions, deletions: d.deletions, diff_truncated: d.truncated };
  },
  summarize: (out) => {
    if (out.identical) return `${out.path} and ${out.other} are identical (sha256 ${out.sha256})`;
    if (out.binary) return `${out.path} and ${out.other} differ (binary; sha256 ${out.sha256} vs ${out.other_sha256})`;
    return `${out.path} vs ${out.other}: +${out.additions} -${out.deletions}${out.diff_truncated ? ' (diff truncated)' : ''}\n${out.diff}`;
  },
});

const rewriteOutput = z.object({
  path: z.string(),
  written: z.boolean().describe('False for a dry run or when the result equals the current content.'),
  dry_run: z.boolean(),
  diff: z.string().describe('Unified diff of the change.'),
  diff_truncated: z.boolean(),
  previous_sha256: z.string(),
  sha256: z.string().describe('sha256 of the new content (pass it as expected_sha256 to the next edit).'),
  backup_path: z.string().nullable(),
});

/**
 * Rewrites the text file `input.path` on the call's host with `transform` (atomically, or not at all with
 * `dry_run`), honouring `expected_sha256` and `backup`, and returns the fields of {@link rewriteOutput}.
 * @throws what `transform` throws (nothing is written), and the errors of `rewriteTextFile` and `diffOrRefuse`.
 */
async function rewrite(
  ctx: ToolContext,
  input: { path: string; dry_run: boolean; backup: boolean; expected_sha256?: string | undefined },
  transform: (before: string) => string,
): Promise<z.output<typeof rewriteOutput>> {
  const options = { dryRun: input.dry_run, backup: input.backup, ...(input.expected_sha256 === undefined ? {} : { expectedSha256: input.expected_sha256 }) };
  const out = await ctx.remote.rewriteTextFile(requireHost(ctx.host), input.path, transform, options);
  const d = diffOrRefuse(out.path, out.path, out.before, out.after);
  return {
    path: out.path,
    written: out.written,
    dry_run: input.dry_run,
    diff: d.diff,
    diff_truncated: d.truncated,
    previous_sha256: out.before_sha256,
    sha256: out.after_sha256,
    backup_path: out.write?.backup_path ?? null,
  };
}

function renderRewrite(out: z.output<typeof rewriteOutput>): string {
  const state = out.dry_run ? 'Dry run (nothing written)' : out.written ? 'Changed' : 'No change to';
  return `${state} ${out.path}: sha256 ${out.sha256}${out.backup_path === null ? '' : `, backup ${out.backup_path}`}\n${out.diff}`;
}

export const editFile = defineTool({
  name: 'ssh_edit_file',
  title: 'Edit a remote file',
  description:
    'Change a text file on a host with exact replacements: edits are applied in order, each old_text must occur exactly once ' +
    '(whitespace and line breaks exact; copy it from ssh_read_file) unless replace_all is true. Pass expected_sha256 (from ' +
    'ssh_read_file or a previous edit) to refuse if the file changed. The file is replaced atomically, keeping its mode and ' +
    'owner; nothing is written if any edit fails. Returns the unified diff and the new sha256; dry_run returns the diff only. ' +
    'Files up to limits.max_diff_bytes.',
  group: 'files',
  tier: 'write',
  kind: 'sftp_write',
  effects: { destructive: true, idempotent: false },
  input: z.object({
    host: hostAlias,
    path: remotePath,
    edits: z
      .array(
        z.object({
          old_text: z.string().min(1).describe('Exact text to replace.'),
          new_text: z.string().describe('Replacement text.'),
          replace_all: z.boolean().default(false).describe('Replace every occurrence instead of requiring exactly one.'),
        }),
      )
      .min(1)
      .max(100),
    expected_sha256: sha256Field.optional().describe('Refuse the edit unless the current file has this sha256.'),
    dry_run: z.boolean().default(false).describe('Return the diff without writing.'),
    backup: z.boolean().default(false).describe('Keep the previous content as <path>.sshgate-bak-<UTC timestamp>.'),
  }),
  output: rewriteOutput.extend({ replacements: z.array(z.number().int()).describe('Replacements made by each edit.') }),
  policy: ({ path }) => ({ paths: [{ path: policyPath(path), access: 'write' }] }),
  async run(input, ctx) {
    let replacements: number[] = [];
    const out = await rewrite(ctx, input, (before) => {
      const applied = applyEdits(before, input.edits);
      replacements = applied.replacements;
      return applied.text;
    });
    return { ...out, replacements };
  },
  summarize: renderRewrite,
});

export const patchFile = defineTool({
  name: 'ssh_patch_file',
  title: 'Patch a remote file',
  description:
    'Apply a unified diff (as diff -u or git diff print it; one file, file names in its headers are ignored) to a text file on a ' +
    'host. Every hunk must apply exactly (context lines included, no fuzz); otherwise nothing is written and the error names the ' +
    'hunk and why it does not fit. Atomic replacement keeping mode and owner; expected_sha256 and dry_run as in ssh_edit_file.',
  group: 'files',
  tier: 'write',
  kind: 'sftp_write',
  effects: { destructive: true, idempotent: false },
  input: z.object({
    host: hostAlias,
    path: remotePath,
    patch: z.string().min(1).describe('Unified diff text.'),
    expected_sha256: sha256Field.optional().describe('Refuse unless the current file has this sha256.'),
    dry_run: z.boolean().default(false).describe('Check the patch and return the diff without writing.'),
    backup: z.boolean().default(false).describe('Keep the previous content as <path>.sshgate-bak-<UTC timestamp>.'),
  }),
  output: rewriteOutput.extend({ hunks: z.number().int().describe('Hunks applied.') }),
  policy: ({ path }) => ({ paths: [{ path: policyPath(path), access: 'write' }] }),
  async run(input, ctx) {
    let hunks = 0;
    const out = await rewrite(ctx, input, (before) => {
      const applied = applyUnifiedPatch(before, input.patch);
      hunks = applied.hunks;
      return applied.text;
    });
    return { ...out, hunks };
  },
  summarize: renderRewrite,
});

export const createDirectory = defineTool({
  name: 'ssh_create_directory',
  title: 'Create a remote directory',
  description:
    'Create a directory on a host with the given mode (default 0755, set exactly, whatever the remote umask). With parents: true, ' +
    'missing parent directories are created too and an existing directory is accepted (like mkdir -p); without it the parent must ' +
    'exist and the path must not.',
  group: 'files',
  tier: 'write',
  kind: 'sftp_write',
  effects: { destructive: false, idempotent: false },
  input: z.object({
    host: hostAlias,
    path: remotePath,
    parents: z.boolean().default(false).describe('Create missing parents; accept an existing directory.'),
    mode: octalMode.default('0755').describe('Permission bits in octal for each directory created.'),
  }),
  output: z.object({
    path: z.string().describe('Real path of the directory.'),
    created: z.array(z.string()).describe('Directories created, outermost first; empty when it existed.'),
  }),
  policy: ({ path }) => ({ paths: [{ path: policyPath(path), access: 'write' }] }),
  async run(input, ctx) {
    return ctx.remote.createDirectory(requireHost(ctx.host), input.path, { parents: input.parents, mode: parseInt(input.mode, 8) });
  },
  summarize: (out) => (out.created.length === 0 ? `${out.path} already exists` : `Created ${out.created.join(', ')}`),
});

export const removePath = defineTool({
  name: 'ssh_remove_path',
  title: 'Remove a remote file or directory',
  description:
    'Remove a file, a symlink (the link, never its target) or an empty directory on a host; a directory tree only with ' +
    'recursive: true. Symlinks inside a tree are removed as links and never followed. A tree with more entries than the ' +
    'server\'s limits.max_remove_entries, or holding a restricted path, is refused with the count. dry_run lists what would ' +
    'go (children before their directory) without removing anything: use it first for trees. A configured root itself cannot ' +
    'be removed. Cancelling a large removal can leave it partly done.',
  group: 'files',
  tier: 'write',
  kind: 'sftp_write',
  effects: { destructive: true, idempotent: true },
  input: z.object({
    host: hostAlias,
    path: remotePath,
    recursive: z.boolean().default(false).describe('Remove a non-empty directory with everything in it.'),
    dry_run: z.boolean().default(false).describe('List what would be removed; remove nothing.'),
  }),
  output: z.object({
    path: z.string(),
    type: entryType,
    entries: z.number().int().describe('Entries removed (or that would be), the path itself included.'),
    listed: z.array(z.string()).describe('Dry run: the paths that would go (first 500).'),
    listed_truncated: z.boolean(),
    dry_run: z.boolean(),
    over_limit: z.boolean().describe('Dry run: true when the real call would be refused for exceeding limits.max_remove_entries.'),
  }),
  policy: ({ path }) => ({ paths: [{ path: policyPath(path), access: 'write' }] }),
  async run(input, ctx) {
    return ctx.remote.removePath(requireHost(ctx.host), input.path, { recursive: input.recursive, dryRun: input.dry_run });
  },
  summarize: (out) =>
    out.dry_run
      ? `Dry run: removing ${out.path} would remove ${out.entries} entr${out.entries === 1 ? 'y' : 'ies'}${out.over_limit ? ' (over limits.max_remove_entries: it would be refused)' : ''}\n${out.listed.join('\n')}${out.listed_truncated ? '\n...' : ''}`
      : `Removed ${out.path} (${out.type}, ${out.entries} entr${out.entries === 1 ? 'y' : 'ies'})`,
});

const copyOutput = z.object({
  source: z.string(),
  destination: z.string(),
  type: entryType,
  files: z.number().int(),
  directories: z.number().int(),
  symlinks: z.number().int(),
  bytes: z.number(),
  skipped: z.array(z.object({ path: z.string(), reason: z.string() })).describe('Entries not copied (fifos, sockets, devices).'),
  method: z.enum(['copy-data', 'stream', 'rename', 'copy+remove']).describe('copy-data: copied by the server itself; stream: through sshgate.'),
  verified: z.enum(['size', 'size+sha256']).nullable().describe('What was checked on the copy before it was put in place.'),
});

function renderCopy(verb: string) {
  return (out: z.output<typeof copyOutput>): string =>
    `${verb} ${out.source} -> ${out.destination} (${out.type}; ${out.method}` +
    (out.files + out.directories + out.symlinks > 0 ? `; ${out.files} files, ${out.directories} directories, ${out.symlinks} symlinks, ${out.bytes} bytes` : '') +
    `)${out.skipped.length > 0 ? `; skipped ${out.skipped.length}` : ''}`;
}

export const copyPath = defineTool({
  name: 'ssh_copy_path',
  title: 'Copy a remote file or tree',
  description:
    'Copy a file, or a directory tree with recursive: true, to a new path on the same host, keeping permission bits and ' +
    'modification times. The copy is made on the host (the server-side copy-data extension where offered, else streamed ' +
    'through sshgate) into a temporary name and renamed into place after its size is verified, so a failure leaves nothing ' +
    'half-copied. destination is the full new path (not a directory to copy into); an existing file is replaced only with ' +
    'overwrite: true, an existing directory never. Symlinks inside a tree are copied as links; a symlink given as source is ' +
    'followed. Trees are capped at limits.max_remove_entries entries.',
  group: 'files',
  tier: 'write',
  kind: 'sftp_write',
  effects: { destructive: true, idempotent: true },
  input: z.object({
    host: hostAlias,
    source: remotePath.describe('What to copy.'),
    destination: remotePath.describe('The full path of the copy.'),
    recursive: z.boolean().default(false).describe('Copy a directory and everything in it.'),
    overwrite: z.boolean().default(false).describe('Replace an existing destination file.'),
  }),
  output: copyOutput,
  policy: ({ source, destination }) => ({
    paths: [
      { path: policyPath(source), access: 'read' },
      { path: policyPath(destination), access: 'write' },
    ],
  }),
  async run(input, ctx) {
    return ctx.remote.copyPath(requireHost(ctx.host), input.source, input.destination, { recursive: input.recursive, overwrite: input.overwrite });
  },
  summarize: renderCopy('Copied'),
});

export const movePath = defineTool({
  name: 'ssh_move_path',
  title: 'Move or rename a remote path',
  description:
    'Move or rename a file, symlink (the link itself) or directory (recursive: true) on a host with an atomic rename. Across file ' +
    'systems, where a rename cannot work, it falls back to a verified copy followed by removal of the source (method copy+remove). ' +
    'destination is the full new path; an existing file there is replaced only with overwrite: true (atomically), an existing ' +
    'directory never. A configured root, or a directory holding a restricted path, cannot be moved.',
  group: 'files',
  tier: 'write',
  kind: 'sftp_write',
  effects: { destructive: true, idempotent: false },
  input: z.object({
    host: hostAlias,
    source: remotePath.describe('What to move.'),
    destination: remotePath.describe('The full new path.'),
    recursive: z.boolean().default(false).describe('Required to move a directory (with everything in it).'),
    overwrite: z.boolean().default(false).describe('Replace an existing destination file.'),
  }),
  output: copyOutput,
  policy: ({ source, destination }) => ({
    paths: [
      { path: policyPath(source), access: 'write' },
      { path: policyPath(destination), access: 'write' },
    ],
  }),
  async run(input, ctx) {
    return ctx.remote.movePath(requireHost(ctx.host), input.source, input.destination, { overwrite: input.overwrite, recursive: input.recursive });
  },
  summarize: renderCopy('Moved'),
});

export const fileOpsTools: readonly AnyTool[] = [findFiles, hashFile, diffFiles, editFile, patchFile, createDirectory, removePath, copyPath, movePath];
