import { createHash } from 'node:crypto';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { AuditLog, type AuditEntry } from '../../../src/audit/audit-log.js';
import { runAuditVerifyCommand, verifyAuditFile } from '../../../src/audit/verify.js';
import { isSshgateError } from '../../../src/errors.js';

const sha256 = (text: string): string => createHash('sha256').update(text).digest('hex');

function entry(id: string, args: Record<string, unknown> = { command: 'uptime' }): AuditEntry {
  return {
    id,
    tool: 'ssh_exec',
    tier: 'exec',
    host: 'web1',
    principal: 'stdio:alice',
    decision: 'allowed',
    rule: null,
    args,
    result: 'ok',
    exit_code: 0,
    bytes_out: 42,
    duration_ms: 3,
  };
}

/** Re-seals a record the way a forger would: edits fields, then recomputes its hash over the canonical body. */
function forge(line: string, changes: Record<string, unknown>): string {
  const { hash: _hash, ...body } = { ...JSON.parse(line), ...changes };
  return JSON.stringify({ ...body, hash: sha256(JSON.stringify(body)) });
}

let dir: string;
let file: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'sshgate-verify-'));
  file = join(dir, 'audit.jsonl');
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** Writes `count` records through AuditLog and returns the lines (without newlines). */
async function writeLog(count: number, args?: Record<string, unknown>): Promise<string[]> {
  const log = await AuditLog.open(file, { fsync: false });
  for (let i = 1; i <= count; i++) await log.append(entry(`call-${i}`, args));
  await log.close();
  return (await readFile(file, 'utf8')).slice(0, -1).split('\n');
}

const joinLines = (lines: string[]): string => lines.map((l) => `${l}\n`).join('');

describe('verifyAuditFile', () => {
  it('accepts an intact log', async () => {
    await writeLog(5);
    expect(await verifyAuditFile(file)).toEqual({ ok: true, records: 5 });
  });

  it('accepts an empty file', async () => {
    await writeFile(file, '');
    expect(await verifyAuditFile(file)).toEqual({ ok: true, records: 0 });
  });

  it('streams records far longer than its read chunks', async () => {
    await writeLog(4, { content: 'x'.repeat(200_000) });
    expect(await verifyAuditFile(file)).toEqual({ ok: true, records: 4 });
  });

  // Each attack takes the five lines of an intact log and returns the file text.
  it.each<[string, (l: string[]) => string, number, RegExp]>([
    ['a field modified in a middle record', (l) => joinLines(l.with(2, l[2]!.replace('"exit_code":0', '"exit_code":1'))), 3, /^hash does not match its content \(record was altered\)$/],
    ['args modified in a middle record', (l) => joinLines(l.with(1, l[1]!.replace('uptime', 'rm -rf /'))), 2, /^hash does not match/],
    ['a deleted middle line', (l) => joinLines(l.toSpliced(2, 1)), 3, /^prev does not match the previous line/],
    ['a deleted first line', (l) => joinLines(l.slice(1)), 1, /^prev is not 64 zeros in the first record/],
    ['swapped lines', (l) => joinLines([l[0]!, l[2]!, l[1]!, l[3]!, l[4]!]), 2, /^prev does not match the previous line/],
    ['a duplicated line', (l) => joinLines([...l.slice(0, 3), l[2]!, l[3]!, l[4]!]), 4, /^prev does not match/],
    ['a truncated last line', (l) => joinLines(l).slice(0, -30), 5, /^not valid JSON/],
    ['a valid last record without its newline', (l) => joinLines(l).slice(0, -1), 5, /^incomplete line/],
    ['an appended forged record with a recomputed hash but a wrong prev', (l) => joinLines([...l, forge(l[4]!, { id: 'forged', prev: sha256(l[3]!) })]), 6, /^prev does not match the previous line/],
    ['a middle record re-sealed with a recomputed hash', (l) => joinLines(l.with(2, forge(l[2]!, { exit_code: 1 }))), 4, /^prev does not match/],
    ['an extra key added after the hash', (l) => joinLines(l.with(1, l[1]!.replace(/}$/, ',"note":"x"}'))), 2, /^not in canonical form/],
    ['a record reformatted with whitespace', (l) => joinLines(l.with(1, JSON.stringify(JSON.parse(l[1]!), null, 1).replaceAll('\n', ''))), 2, /^not in canonical form/],
    ['keys reordered in a record', (l) => joinLines(l.with(1, (({ id, ...rest }) => JSON.stringify({ ...rest, id }))(JSON.parse(l[1]!)))), 2, /^not in canonical form/],
    ['a blank line inserted', (l) => joinLines(l.toSpliced(2, 0, '')), 3, /^not valid JSON/],
    ['a line of garbage inserted', (l) => joinLines(l.toSpliced(2, 0, 'rm -rf /')), 3, /^not valid JSON/],
    ['a JSON array instead of a record', (l) => joinLines(l.with(0, '[]')), 1, /^not a JSON object$/],
    ['a JSON null instead of a record', (l) => joinLines(l.with(0, 'null')), 1, /^not a JSON object$/],
    ['a number too large for a double', (l) => joinLines(l.with(1, l[1]!.replace('"duration_ms":3', '"duration_ms":1e999'))), 2, /^field "duration_ms" is missing or malformed$/],
    ['a JSON string instead of a record', (l) => joinLines(l.with(0, '"x"')), 1, /^not a JSON object$/],
  ])('detects %s', async (_attack, attack, badLine, reason) => {
    const lines = await writeLog(5);
    await writeFile(file, attack(lines));
    const result = await verifyAuditFile(file);
    expect(result).toMatchObject({ ok: false, firstBadLine: badLine, records: badLine - 1 });
    expect(result.ok ? '' : result.reason).toMatch(reason);
  });

  // Each malformed value is re-sealed with a fresh hash, so only the field check can catch it.
  it.each<[string, unknown]>([
    ['ts', undefined],
    ['ts', 42],
    ['ts', '2026-01-02 03:04:05'],
    ['ts', '2026-01-02T03:04:05Z'],
    ['id', null],
    ['tool', 7],
    ['tier', 'root'],
    ['host', 1],
    ['principal', undefined],
    ['decision', 'maybe'],
    ['rule', false],
    ['args', null],
    ['args', ['a']],
    ['args', 'command'],
    ['result', null],
    ['exit_code', 1.5],
    ['exit_code', '0'],
    ['bytes_out', -1],
    ['bytes_out', 0.5],
    ['duration_ms', -1],
    ['duration_ms', '3'],
    ['duration_ms', null],
    ['prev', null],
    ['prev', 'abc'],
    ['prev', 'A'.repeat(64)],
  ])('detects a record whose %s is %j', async (field, value) => {
    const lines = await writeLog(3);
    await writeFile(file, joinLines(lines.with(1, forge(lines[1]!, { [field]: value }))));
    expect(await verifyAuditFile(file)).toEqual({ ok: false, records: 1, firstBadLine: 2, reason: `field "${field}" is missing or malformed` });
  });

  it.each([
    ['null', '"hash":null'],
    ['not hex', `"hash":"${'z'.repeat(64)}"`],
    ['upper-case hex', `"hash":"${'A'.repeat(64)}"`],
  ])('detects a record whose hash is %s', async (_name, hash) => {
    const lines = await writeLog(2);
    await writeFile(file, joinLines(lines.with(1, lines[1]!.replace(/"hash":"[0-9a-f]{64}"/, hash))));
    expect(await verifyAuditFile(file)).toMatchObject({ ok: false, firstBadLine: 2, reason: 'field "hash" is missing or malformed' });
  });

  // Not a security boundary: the chain is keyless. These pass; only a hash anchored elsewhere would catch them.
  it.each<[string, (l: string[]) => string, number]>([
    ['records cut off the end at a line boundary', (l) => joinLines(l.slice(0, 3)), 3],
    ['a forged record appended with a recomputed hash and the right prev', (l) => joinLines([...l, forge(l[4]!, { id: 'forged', prev: sha256(l[4]!) })]), 6],
  ])('cannot detect %s (keyless chain)', async (_name, attack, records) => {
    const lines = await writeLog(5);
    await writeFile(file, attack(lines));
    expect(await verifyAuditFile(file)).toEqual({ ok: true, records });
  });

  it.each([
    ['does not exist', () => Promise.resolve(), /ENOENT/],
    ['is a directory', async () => mkdir(file), /EISDIR/],
  ])('throws AUDIT_FAILED when the file %s', async (_name, arrange, message) => {
    await arrange();
    const err: unknown = await verifyAuditFile(file).catch((e: unknown) => e);
    expect(isSshgateError(err, 'AUDIT_FAILED')).toBe(true);
    expect((err as Error).message).toMatch(new RegExp(`cannot read audit log ${file}: ${message.source}`));
  });
});

describe('runAuditVerifyCommand (sshgate audit verify FILE)', () => {
  async function run(path: string): Promise<{ code: number; output: string[] }> {
    const output: string[] = [];
    const code = await runAuditVerifyCommand(path, (line) => output.push(line));
    return { code, output };
  }

  it.each([
    [3, 'audit log intact: 3 records, chain verified'],
    [1, 'audit log intact: 1 record, chain verified'],
  ])('exits 0 for an intact log of %i record(s)', async (count, message) => {
    await writeLog(count);
    expect(await run(file)).toEqual({ code: 0, output: [message] });
  });

  it('exits 1 naming the first bad line and why', async () => {
    const lines = await writeLog(8);
    await writeFile(file, joinLines(lines.with(6, lines[6]!.replace('"bytes_out":42', '"bytes_out":0'))));
    expect(await run(file)).toEqual({ code: 1, output: ['line 7: hash does not match its content (record was altered)'] });
  });

  it('exits 2 when the file cannot be read', async () => {
    const missing = join(dir, 'missing.jsonl');
    const { code, output } = await run(missing);
    expect(code).toBe(2);
    expect(output).toEqual([expect.stringMatching(new RegExp(`^cannot read audit log ${missing}: ENOENT`))]);
  });
});
