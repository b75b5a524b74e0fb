// `sshgate approvals | approve <id> | deny <id>`: the operator's terminal channel for human approval.
// It runs in the operator's own shell; no MCP tool can reach it.
import { userInfo } from 'node:os';
import { confirm } from '@inquirer/prompts';
import { loadConfig, type ConfigFlags } from '../config/load.js';
import { ApprovalStore, type ApprovalRequest } from '../server/approvals.js';
import { SshgateError } from '../errors.js';

type Write = (line: string) => void;

async function store(flags: ConfigFlags): Promise<ApprovalStore> {
  const loaded = await loadConfig(flags);
  return new ApprovalStore(loaded.approvalsDir, loaded.config.approvals.ttl_ms);
}

function describe(request: ApprovalRequest): string {
  return [
    `approval ${request.id}  (${request.status}, expires ${request.expires_at})`,
    `  asked by ${request.principal} at ${request.created_at}, rule ${request.rule}`,
    ...request.summary.split('\n').map((l) => `  ${l}`),
  ].join('\n');
}

/** Lists pending approvals; exit 0. */
export async function runApprovals(flags: ConfigFlags, write: Write): Promise<number> {
  const pending = await (await store(flags)).list();
  if (pending.length === 0) write('no pending approvals');
  for (const request of pending) write(`${describe(request)}\n`);
  return 0;
}

/**
 * Approves or denies one request after showing exactly what it would run. Approving asks for confirmation on a
 * terminal unless `yes` is set. Returns the exit code: 0 done, 1 refused or aborted.
 */
export async function runDecide(flags: ConfigFlags, id: string, decision: 'approved' | 'denied', yes: boolean, write: Write): Promise<number> {
  const approvals = await store(flags);
  let request: ApprovalRequest | null;
  try {
    request = await approvals.get(id);
  } catch (err) {
    write(`sshgate: ${(err as Error).message}`);
    return 1;
  }
  if (request === null) {
    write(`sshgate: no approval request ${id} (unknown, expired, or already used)`);
    return 1;
  }
  write(describe(request));
  if (decision === 'approved' && !yes) {
    if (!process.stdin.isTTY) {
      write('sshgate: not a terminal; pass --yes to approve without the prompt');
      return 1;
    }
    const ok = await confirm({ message: 'Approve exactly this call, once?', default: false });
    if (!ok) {
      write('not approved');
      return 1;
    }
  }
  try {
    const decided = await approvals.decide(id, decision, `cli:${safeUser()}`);
    write(`${decided.status}: the model may now repeat the call with approval_id "${id}"${decision === 'denied' ? ' (it will be refused)' : ''}`);
    return 0;
  } catch (err) {
    if (err instanceof SshgateError) {
      write(`sshgate: ${err.message}`);
      return 1;
    }
    throw err;
  }
}

function safeUser(): string {
  try {
    return userInfo().username;
  } catch {
    return 'unknown';
  }
}
