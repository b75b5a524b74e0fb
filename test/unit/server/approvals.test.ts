// The terminal approval channel's store: single use, bound to the call, expiring, files 0600.
import { mkdtempSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ApprovalStore } from '../../../src/server/approvals.js';

function store(now: { t: number }): ApprovalStore {
  return new ApprovalStore(join(mkdtempSync(join(tmpdir(), 'sshgate-approvals-')), 'approvals'), 60_000, () => now.t);
}
const fields = { host: 'web1', tool: 'ssh_exec', rule: 'hosts.web1.approval: exec', summary: 'Command: id', args: { command: 'id' }, digest: 'd1', principal: 'stdio:me' };

describe('ApprovalStore', () => {
  it('creates 0600 files in a 0700 directory with unguessable ids', async () => {
    const s = store({ t: 1_000_000 });
    const a = await s.create(fields);
    const b = await s.create(fields);
    expect(a.id).toMatch(/^[a-z2-7]{16}$/u);
    expect(a.id).not.toBe(b.id);
    expect(statSync(join(s.dir, `${a.id}.json`)).mode & 0o777).toBe(0o600);
    expect(statSync(s.dir).mode & 0o777).toBe(0o700);
    expect((await s.list()).map((r) => r.id).sort()).toEqual([a.id, b.id].sort());
  });

  it('a pending approval is not usable; an approved one is used once, only by the same call and principal', async () => {
    const s = store({ t: 1_000_000 });
    const a = await s.create(fields);
    await expect(s.consume(a.id, 'd1', 'stdio:me')).rejects.toMatchObject({ code: 'APPROVAL_REQUIRED' });
    await s.decide(a.id, 'approved', 'cli:op');
    await expect(s.consume(a.id, 'd2', 'stdio:me')).rejects.toMatchObject({ code: 'APPROVAL_DENIED' });
    await expect(s.consume(a.id, 'd1', 'stdio:other')).rejects.toMatchObject({ code: 'APPROVAL_DENIED' });
    expect((await s.consume(a.id, 'd1', 'stdio:me')).decided_by).toBe('cli:op');
    await expect(s.consume(a.id, 'd1', 'stdio:me')).rejects.toMatchObject({ code: 'APPROVAL_DENIED' });
    await expect(s.decide(a.id, 'approved', 'cli:op')).rejects.toMatchObject({ code: 'APPROVAL_DENIED' });
  });

  it('expires requests and refuses decisions on expired or decided ones', async () => {
    const now = { t: 1_000_000 };
    const s = store(now);
    const a = await s.create(fields);
    const b = await s.create(fields);
    await s.decide(b.id, 'denied', 'cli:op');
    await expect(s.decide(b.id, 'approved', 'cli:op')).rejects.toThrow(/already denied/u);
    await expect(s.consume(b.id, 'd1', 'stdio:me')).rejects.toThrow(/was denied/u);
    now.t += 60_001;
    await expect(s.decide(a.id, 'approved', 'cli:op')).rejects.toThrow(/expired/u);
    await expect(s.consume(a.id, 'd1', 'stdio:me')).rejects.toThrow(/expired/u);
    expect(await s.list()).toEqual([]);
  });

  it.each(['../../etc/passwd', 'ABCDEFGHIJKLMNOP', 'short', 'aaaaaaaaaaaaaaaa/../x'])('refuses a malformed id %j (path traversal)', async (id) => {
    const s = store({ t: 1 });
    await expect(s.get(id)).rejects.toMatchObject({ code: 'APPROVAL_DENIED' });
  });

  it('an unknown id is refused, and listing an absent directory is empty', async () => {
    const s = store({ t: 1 });
    expect(await s.list()).toEqual([]);
    expect(await s.get('aaaaaaaaaaaaaaaa')).toBeNull();
    await expect(s.consume('aaaaaaaaaaaaaaaa', 'd', 'p')).rejects.toMatchObject({ code: 'APPROVAL_DENIED' });
    await expect(s.decide('aaaaaaaaaaaaaaaa', 'approved', 'x')).rejects.toMatchObject({ code: 'APPROVAL_DENIED' });
  });
});
