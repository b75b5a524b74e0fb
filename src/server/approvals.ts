// Pending approvals for the terminal channel: one 0600 JSON file per request in the operator's state directory.
// Only the operator's `sshgate approve` changes a request's status; the model sees the id and nothing else.
import { randomBytes } from 'node:crypto';
import { mkdir, readdir, readFile, rename, rm, writeFile, chmod } from 'node:fs/promises';
import { join } from 'node:path';
import { SshgateError } from '../errors.js';

/** One approval request, as stored. */
export interface ApprovalRequest {
  id: string;
  status: 'pending' | 'approved' | 'denied';
  created_at: string;
  expires_at: string;
  host: string | null;
  tool: string;
  /** The config rule that asked for approval (`hosts.web1.approval: destructive`). */
  rule: string;
  /** What will run, for the human: the command, or the path and a digest of the content. */
  summary: string;
  /** Redacted arguments. */
  args: Record<string, unknown>;
  /** sha256 binding the approval to exactly this call (see policy/approval.ts callDigest). */
  digest: string;
  principal: string;
  decided_by: string | null;
  decided_at: string | null;
}

const ID_PATTERN = /^[a-z2-7]{16}$/u;
const BASE32 = 'abcdefghijklmnopqrstuvwxyz234567';

function newId(): string {
  const bytes = randomBytes(10);
  let out = '';
  let bits = 0;
  let value = 0;
  for (const byte of bytes) {
    value = (value << 8) | byte;
    bits += 8;
    while (bits >= 5) {
      out += BASE32.charAt((value >>> (bits - 5)) & 31);
      bits -= 5;
    }
  }
  return out;
}

/**
 * Approval requests in a directory (created 0700; files 0600, written atomically). Requests expire after
 * `ttlMs`; an approved request is consumed by exactly one call whose digest and principal match.
 */
export class ApprovalStore {
  constructor(
    readonly dir: string,
    readonly ttlMs: number,
    private readonly now: () => number = Date.now,
  ) {}

  private path(id: string, suffix = '.json'): string {
    if (!ID_PATTERN.test(id)) throw new SshgateError('APPROVAL_DENIED', `approval id ${JSON.stringify(id.slice(0, 40))} is not a valid id`);
    return join(this.dir, `${id}${suffix}`);
  }

  private async write(request: ApprovalRequest): Promise<void> {
    await mkdir(this.dir, { recursive: true, mode: 0o700 });
    await chmod(this.dir, 0o700);
    const tmp = join(this.dir, `.${request.id}.${randomBytes(4).toString('hex')}.tmp`);
    await writeFile(tmp, `${JSON.stringify(request, null, 2)}\n`, { mode: 0o600 });
    await rename(tmp, this.path(request.id));
  }

  /** Records a new pending request and returns it. @throws SshgateError INTERNAL when the directory is unwritable. */
  async create(fields: Pick<ApprovalRequest, 'host' | 'tool' | 'rule' | 'summary' | 'args' | 'digest' | 'principal'>): Promise<ApprovalRequest> {
    const now = this.now();
    const request: ApprovalRequest = {
      id: newId(),
      status: 'pending',
      created_at: new Date(now).toISOString(),
      expires_at: new Date(now + this.ttlMs).toISOString(),
      ...fields,
      decided_by: null,
      decided_at: null,
    };
    try {
      await this.write(request);
    } catch (err) {
      throw new SshgateError('INTERNAL', `cannot record the approval request in ${this.dir}: ${(err as Error).message}`, { cause: err });
    }
    return request;
  }

  /** The request with this id, or null when there is none (or it was used). */
  async get(id: string): Promise<ApprovalRequest | null> {
    try {
      return JSON.parse(await readFile(this.path(id), 'utf8')) as ApprovalRequest;
    } catch (err) {
      if (err instanceof SshgateError) throw err;
      return null;
    }
  }

  private expired(request: ApprovalRequest): boolean {
    return Date.parse(request.expires_at) <= this.now();
  }

  /** Pending, unexpired requests, oldest first; expired and used files are removed on the way. */
  async list(): Promise<ApprovalRequest[]> {
    let names: string[];
    try {
      names = await readdir(this.dir);
    } catch {
      return [];
    }
    const out: ApprovalRequest[] = [];
    for (const name of names) {
      const match = /^([a-z2-7]{16})\.(json|used\.json)$/u.exec(name);
      if (match?.[1] === undefined) continue;
      if (match[2] === 'used.json') {
        await rm(join(this.dir, name), { force: true });
        continue;
      }
      const request = await this.get(match[1]);
      if (request === null) continue;
      if (this.expired(request)) {
        await rm(join(this.dir, name), { force: true });
        continue;
      }
      if (request.status === 'pending') out.push(request);
    }
    return out.sort((a, b) => a.created_at.localeCompare(b.created_at));
  }

  /**
   * Approves or denies a pending request (the operator's terminal command).
   * @throws SshgateError APPROVAL_DENIED when the request is unknown, expired or already decided.
   */
  async decide(id: string, decision: 'approved' | 'denied', by: string): Promise<ApprovalRequest> {
    const request = await this.get(id);
    if (request === null) throw new SshgateError('APPROVAL_DENIED', `no approval request ${id} (unknown, or already used)`);
    if (this.expired(request)) throw new SshgateError('APPROVAL_DENIED', `approval request ${id} expired at ${request.expires_at}`);
    if (request.status !== 'pending') throw new SshgateError('APPROVAL_DENIED', `approval request ${id} was already ${request.status}`);
    const decided: ApprovalRequest = { ...request, status: decision, decided_by: by, decided_at: new Date(this.now()).toISOString() };
    await this.write(decided);
    return decided;
  }

  /**
   * Uses an approved request for one call. The request must be approved, unexpired, and bound to the same
   * digest and principal; it is then consumed (renamed) so that it can never serve a second call.
   * @throws SshgateError APPROVAL_REQUIRED while it is still pending, APPROVAL_DENIED otherwise.
   */
  async consume(id: string, digest: string, principal: string): Promise<ApprovalRequest> {
    const request = await this.get(id);
    if (request === null) throw new SshgateError('APPROVAL_DENIED', `approval ${id} is unknown or was already used`);
    if (this.expired(request)) throw new SshgateError('APPROVAL_DENIED', `approval ${id} expired at ${request.expires_at}; the call needs a new approval`);
    if (request.status === 'denied') throw new SshgateError('APPROVAL_DENIED', `approval ${id} was denied by ${request.decided_by ?? 'the operator'}`);
    if (request.digest !== digest || request.principal !== principal) {
      throw new SshgateError('APPROVAL_DENIED', `approval ${id} was given for a different call; an approval covers exactly the call it was asked for`);
    }
    if (request.status === 'pending') {
      throw new SshgateError('APPROVAL_REQUIRED', `approval ${id} is still pending: the operator must run \`sshgate approve ${id}\` first`, {
        details: { approval_id: id },
      });
    }
    try {
      await rename(this.path(id), this.path(id, '.used.json'));
    } catch {
      throw new SshgateError('APPROVAL_DENIED', `approval ${id} was already used`);
    }
    return request;
  }
}
