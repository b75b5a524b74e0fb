import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { appendFile, mkdir, mkdtemp, readFile, rename, rm, stat, symlink, truncate, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { AuditLog, GENESIS_PREV, type AuditEntry } from '../../../src/audit/audit-log.js';
import { verifyAuditFile } from '../../../src/audit/verify.js';
import { isSshgateError } from '../../../src/errors.js';

const sha256 = (text: string): string => createHash('sha256').update(text).digest('hex');

function entry(overrides: Partial<AuditEntry> = {}): AuditEntry {
  return {
    id: 'c-1',
    tool: 'ssh_exec',
    tier: 'exec',
    host: 'web1',
    principal: 'stdio:alice',
    decision: 'allowed',
    rule: null,
    args: { host: 'web1', command: 'uptime' },
    result: 'ok',
    exit_code: 0,
    bytes_out: 42,
    duration_ms: 3,
    ...overrides,
  };
}

async function lines(path: string): Promise<string[]> {
  const text = await readFile(path, 'utf8');
  expect(text.endsWith('\n')).toBe(true);
  return text.slice(0, -1).split('\n');
}

/** The `id` of each record in the file, in order. */
async function ids(path: string): Promise<string[]> {
  return (await lines(path)).map((l) => (JSON.parse(l) as { id: string }).id);
}

async function expectAuditFailed(promise: Promise<unknown>, message: RegExp): Promise<void> {
  const err: unknown = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(isSshgateError(err, 'AUDIT_FAILED'), `expected AUDIT_FAILED, got ${String(err)}`).toBe(true);
  expect((err as Error).message).toMatch(message);
}

let dir: string;
let file: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'sshgate-audit-'));
  file = join(dir, 'audit.jsonl');
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('AuditLog: writing', () => {
  it('writes one canonical JSON line per call, starting the chain at 64 zeros', async () => {
    const log = await AuditLog.open(file, { now: () => new Date(Date.UTC(2026, 0, 2, 3, 4, 5, 6)) });
    const record = await log.append(entry({ rule: 'hosts.web1.commands.allow[0]', exit_code: null }));
    await log.close();

    const [line, ...rest] = await lines(file);
    expect(rest).toEqual([]);
    const parsed = JSON.parse(line!) as Record<string, unknown>;
    expect(Object.keys(parsed)).toEqual([
      'ts', 'id', 'tool', 'tier', 'host', 'principal', 'decision', 'rule', 'approved_by', 'args', 'result', 'exit_code', 'bytes_out',
      'duration_ms', 'prev', 'hash',
    ]);
    expect(parsed).toMatchObject({ ts: '2026-01-02T03:04:05.006Z', prev: GENESIS_PREV, rule: 'hosts.web1.commands.allow[0]' });
    const { hash, ...body } = parsed;
    expect(hash).toBe(sha256(JSON.stringify(body)));
    expect(record).toEqual(parsed);
  });

  it('links each record to the sha256 of the previous line text', async () => {
    const log = await AuditLog.open(file, { fsync: false });
    const first = await log.append(entry({ id: 'a' }));
    const second = await log.append(
      entry({ id: 'b', tool: 'ssh_list_hosts', tier: 'read', host: null, decision: 'denied', rule: 'tier', result: 'POLICY_DENIED' }),
    );
    const [line1] = await lines(file);
    expect(first.prev).toBe(GENESIS_PREV);
    expect(second.prev).toBe(sha256(line1!));
    expect(second.prev).not.toBe(first.hash);
  });

  it('creates missing parent directories 0700 and the file 0600', async () => {
    const nested = join(dir, 'state', 'sshgate', 'audit.jsonl');
    await AuditLog.open(nested);
    expect((await stat(join(dir, 'state'))).mode & 0o777).toBe(0o700);
    expect((await stat(join(dir, 'state', 'sshgate'))).mode & 0o777).toBe(0o700);
    expect((await stat(nested)).mode & 0o777).toBe(0o600);
  });

  it('keeps 200 concurrent appends on one linear chain, in call order', async () => {
    const log = await AuditLog.open(file);
    const callIds = Array.from({ length: 200 }, (_, i) => `call-${i}`);
    await Promise.all(callIds.map((id) => log.append(entry({ id }))));
    expect(await ids(file)).toEqual(callIds);
    expect(await verifyAuditFile(file)).toEqual({ ok: true, records: 200 });
  });

  it('writes the same chain with fsync off', async () => {
    const log = await AuditLog.open(file, { fsync: false });
    await log.append(entry({ id: 'a' }));
    await log.append(entry({ id: 'b' }));
    expect(await verifyAuditFile(file)).toEqual({ ok: true, records: 2 });
  });

  it('close waits for queued appends, then refuses new ones', async () => {
    const log = await AuditLog.open(file);
    const pending = [log.append(entry({ id: 'a' })), log.append(entry({ id: 'b' }))];
    await log.close();
    await log.close();
    await expect(Promise.all(pending)).resolves.toHaveLength(2);
    await expectAuditFailed(log.append(entry()), /is closed/);
    expect(await lines(file)).toHaveLength(2);
  });
});

describe('AuditLog: reopening an existing file', () => {
  it('continues the chain across reopen', async () => {
    const first = await AuditLog.open(file);
    await first.append(entry({ id: 'a' }));
    await first.append(entry({ id: 'b' }));
    await first.close();

    const second = await AuditLog.open(file);
    const record = await second.append(entry({ id: 'c' }));
    expect(record.prev).toBe(sha256((await lines(file))[1]!));
    expect(await verifyAuditFile(file)).toEqual({ ok: true, records: 3 });
  });

  it('starts a fresh chain in an existing empty file', async () => {
    await writeFile(file, '');
    const log = await AuditLog.open(file);
    expect((await log.append(entry())).prev).toBe(GENESIS_PREV);
  });

  // The tail is read in a 64 KiB window that doubles until it holds the whole last line.
  it.each([
    ['as the only line', 0],
    ['after shorter lines', 3],
  ])('continues after a last record longer than the tail window (%s)', async (_name, before) => {
    const log = await AuditLog.open(file, { fsync: false });
    for (let i = 0; i < before; i++) await log.append(entry({ id: `short-${i}` }));
    await log.append(entry({ id: 'long', args: { content: 'x'.repeat(300_000) } }));
    await log.close();

    const reopened = await AuditLog.open(file);
    const record = await reopened.append(entry({ id: 'next' }));
    expect(record.prev).toBe(sha256((await lines(file))[before]!));
    expect(await verifyAuditFile(file)).toEqual({ ok: true, records: before + 2 });
  });

  it.each([
    ['garbage', (text: string) => `${text}this is not json\n`, 3, /not valid JSON/],
    ['a truncated last line', (text: string) => text.slice(0, -20), 2, /incomplete line/],
    ['a valid last record that lost its newline', (text: string) => text.slice(0, -1), 2, /incomplete line/],
    ['an altered last record', (text: string) => text.replace(/"id":"b"/, '"id":"B"'), 2, /hash does not match/],
    ['a blank last line', (text: string) => `${text}\n`, 3, /not valid JSON/],
  ])('refuses to open a file whose last line is %s, naming the file and line', async (_name, damage, lineNo, reason) => {
    const log = await AuditLog.open(file);
    await log.append(entry({ id: 'a' }));
    await log.append(entry({ id: 'b' }));
    const damaged = damage(await readFile(file, 'utf8'));
    await writeFile(file, damaged);

    await expectAuditFailed(AuditLog.open(file), new RegExp(`${file} line ${lineNo}: ${reason.source}`));
    expect(await readFile(file, 'utf8')).toBe(damaged);
  });

  it('refuses a file that is only a newline', async () => {
    await writeFile(file, '\n');
    await expectAuditFailed(AuditLog.open(file), /line 1: not valid JSON/);
  });

  it.each([
    ['a directory', async () => mkdir(file), /is not a regular file/],
    ['under a regular file', async () => { await writeFile(file, ''); file = join(file, 'audit.jsonl'); }, /cannot open audit log .*EEXIST.*mkdir/],
    ['a name longer than the filesystem allows', () => { file = join(dir, 'a'.repeat(300)); return Promise.resolve(); }, /cannot open audit log .*ENAMETOOLONG/],
    ['a dangling symlink', async () => symlink(join(dir, 'missing'), file), /cannot open audit log .*ENOENT/],
  ])('refuses a path that is %s', async (_name, arrange, message) => {
    await arrange();
    await expectAuditFailed(AuditLog.open(file), message);
  });
});

describe('AuditLog: failing closed', () => {
  it('refuses the call on a full disk (/dev/full) and keeps the chain for the next append', async () => {
    const log = await AuditLog.open(file);
    await rm(file);
    await symlink('/dev/full', file);
    await expectAuditFailed(log.append(entry({ id: 'lost' })), /cannot write audit record to .*ENOSPC/);

    await rm(file);
    await writeFile(file, '');
    const record = await log.append(entry({ id: 'kept' }));
    expect(record.prev).toBe(GENESIS_PREV);
    expect(await verifyAuditFile(file)).toEqual({ ok: true, records: 1 });
  });

  it('refuses the call when the file was replaced by a directory, then chains onto the last good record', async () => {
    const log = await AuditLog.open(file);
    await log.append(entry({ id: 'a' }));
    await log.append(entry({ id: 'b' }));
    await rename(file, `${file}.aside`);
    await mkdir(file);
    await expectAuditFailed(log.append(entry({ id: 'lost' })), /EISDIR/);

    await rm(file, { recursive: true });
    await rename(`${file}.aside`, file);
    await log.append(entry({ id: 'c' }));
    expect(await ids(file)).toEqual(['a', 'b', 'c']);
    expect(await verifyAuditFile(file)).toEqual({ ok: true, records: 3 });
  });

  it('refuses the call when the file was removed, and never starts a new chain', async () => {
    const log = await AuditLog.open(file);
    await log.append(entry({ id: 'a' }));
    await rm(file);
    await expectAuditFailed(log.append(entry({ id: 'b' })), /ENOENT/);
    await expect(stat(file)).rejects.toThrow(/ENOENT/);
  });

  it.each([
    ['appended to with garbage by another writer', async () => appendFile(file, 'other process\n'), /another writer left an invalid last record/],
    ['truncated', async () => truncate(file, 10), /shrank outside sshgate/],
  ])('refuses to write to a file %s behind its back, leaving it untouched', async (_name, tamper, message) => {
    const log = await AuditLog.open(file);
    await log.append(entry({ id: 'a' }));
    await tamper();
    const before = await readFile(file, 'utf8');
    await expectAuditFailed(log.append(entry({ id: 'b' })), message);
    expect(await readFile(file, 'utf8')).toBe(before);
  });

  it('two sshgate processes sharing one file (two MCP clients) interleave records into one valid chain', async () => {
    const first = await AuditLog.open(file);
    const second = await AuditLog.open(file);
    for (let i = 0; i < 20; i += 1) {
      await Promise.all([first.append(entry({ id: `a${i}` })), second.append(entry({ id: `b${i}` }))]);
    }
    await first.close();
    await second.close();
    const verdict = await verifyAuditFile(file);
    expect(verdict).toEqual({ ok: true, records: 40 });
  });

  it('removes a stale append lock left by a process that died', async () => {
    const log = await AuditLog.open(file);
    await writeFile(`${file}.lock`, '999999999');
    await log.append(entry({ id: 'after-crash' }));
    expect((await verifyAuditFile(file)).ok).toBe(true);
    await expect(stat(`${file}.lock`)).rejects.toThrow(/ENOENT/);
  });

  const circular: Record<string, unknown> = {};
  circular['self'] = circular;
  it.each([
    ['a BigInt in args', entry({ args: { size: 10n } }), /cannot be serialised/],
    ['circular args', entry({ args: circular }), /cannot be serialised/],
    ['a NaN duration', entry({ duration_ms: Number.NaN }), /invalid: field "duration_ms"/],
    ['an unknown tier', entry({ tier: 'root' as AuditEntry['tier'] }), /invalid: field "tier"/],
    ['an undefined host', entry({ host: undefined as unknown as null }), /invalid: field "host"/],
  ])('refuses an entry with %s instead of writing a line that would not verify', async (_name, bad, message) => {
    const log = await AuditLog.open(file);
    await log.append(entry({ id: 'a' }));
    await expectAuditFailed(log.append(bad), message);
    await log.append(entry({ id: 'b' }));
    expect(await verifyAuditFile(file)).toEqual({ ok: true, records: 2 });
  });

  // A real disk-full in the middle of a record: RLIMIT_FSIZE makes write(2) stop part-way (Node ignores SIGXFSZ).
  // Runs in a child process because the limit is per process; Node strips the types of the source itself.
  it('rolls back a record the disk filled up in the middle of, so the chain stays intact', async () => {
    const source = fileURLToPath(new URL('../../../src/audit/audit-log.ts', import.meta.url));
    const child = join(dir, 'child.mjs');
    await writeFile(
      child,
      `import { registerHooks } from 'node:module';
registerHooks({ resolve(spec, ctx, next) {
  try { return next(spec, ctx); } catch (err) {
    if (spec.startsWith('.') && spec.endsWith('.js')) return next(spec.slice(0, -3) + '.ts', ctx);
    throw err;
  }
} });
const { AuditLog } = await import(${JSON.stringify(source)});
const base = ${JSON.stringify(entry())};
const make = (id, size) => ({ ...base, id, args: { content: 'x'.repeat(size) } });
const log = await AuditLog.open(process.argv[2]);
await log.append(make('a', 10));
const outcome = await log.append(make('too-big', 5000)).then(() => 'written', (err) => err.code + ': ' + err.message);
await log.append(make('b', 10));
console.log(JSON.stringify({ outcome }));
`,
    );
    const { stdout } = await promisify(execFile)('prlimit', ['--fsize=3000', process.execPath, child, file]);
    expect(JSON.parse(stdout).outcome).toMatch(/^AUDIT_FAILED: .*short write/);
    expect(await ids(file)).toEqual(['a', 'b']);
    expect(await verifyAuditFile(file)).toEqual({ ok: true, records: 2 });
  });
});
