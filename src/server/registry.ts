// Tool selection (once, at start-up) and invokeTool: the one place for every cross-cutting concern of a call.
import { createHash, randomUUID } from 'node:crypto';
import { SshgateError, isSshgateError, type ErrorCode } from '../errors.js';
import type { LoadedConfig, ResolvedHost } from '../config/load.js';
import { GROUPS, type Group } from '../config/schema.js';
import type { Logger } from '../log.js';
import type { AuditLog, AuditDecision } from '../audit/audit-log.js';
import { tierAllows, type Tier } from '../policy/tiers.js';
import { assertRate, type RateLimiter } from '../policy/rate-limit.js';
import { checkCommand } from '../policy/command-policy.js';
import { stripTerminalControls, type Redactor } from '../policy/redaction.js';
import { checkRemotePath } from '../policy/path-policy.js';
import { createHostFacade, type HostInventory } from '../ssh/facade.js';
import type { ConnectionPool } from '../ssh/pool.js';
import type { ServerState } from '../ssh/state.js';
import { isHostBound, type AnyTool, type ToolContext } from '../tools/define-tool.js';

/**
 * Chooses the tools a session offers. Evaluation order:
 * 1. the tool's group is enabled (`groups`, default: every group);
 * 2. the tool's tier is at or below the global `tier` (tools above it are not offered at all).
 * @throws SshgateError CONFIG_INVALID when two tools share a name (a programming error caught at start-up).
 */
export function selectTools(all: readonly AnyTool[], config: { tier: Tier; groups?: readonly Group[] | undefined }): AnyTool[] {
  const groups = new Set<Group>(config.groups ?? GROUPS);
  const names = new Set<string>();
  const selected: AnyTool[] = [];
  for (const tool of all) {
    if (names.has(tool.name)) throw new SshgateError('INTERNAL', `two tools are named ${tool.name}`);
    names.add(tool.name);
    if (!groups.has(tool.group)) continue;
    if (!tierAllows(config.tier, tool.tier)) continue;
    selected.push(tool);
  }
  return selected;
}

/** Everything a call needs that lives longer than the call. */
export interface Runtime {
  loaded: LoadedConfig;
  pool: ConnectionPool;
  audit: AuditLog;
  redactor: Redactor;
  rate: RateLimiter;
  log: Logger;
  inventory: HostInventory;
  /** Who is calling: `stdio:<local user>` for the stdio transport. */
  principal: string;
  /** Per-server singletons of the facade groups (shell sessions, spools). */
  state: ServerState;
  /** Set while the audit log fails; calls are then refused before they run (fail closed). */
  auditState: { failing: boolean };
}

/** What the transport hands a call. */
export interface CallContext {
  /** Aborted when the client cancels the request or goes away. */
  signal: AbortSignal;
  /** Sends an MCP progress notification; absent when the client sent no progress token. */
  progress?: (done: number, total?: number, message?: string) => void;
}

/** The error half of a call's outcome, as the model sees it. */
export interface ToolErrorView {
  code: ErrorCode;
  message: string;
  retryable: boolean;
  hint?: string;
  details?: Record<string, unknown>;
}

/** The outcome of a call, before it becomes a CallToolResult. */
export type ToolCallOutcome =
  | { isError: false; structured: Record<string, unknown>; text: string }
  | { isError: true; error: ToolErrorView; text: string };

/** Input fields whose content is summarised (digest and length) in the audit log rather than copied. */
const BULKY_FIELDS = new Set(['content', 'stdin', 'text', 'patch']);

function auditArgs(input: Record<string, unknown>, redactor: Redactor): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(input)) {
    if (BULKY_FIELDS.has(key) && typeof value === 'string') {
      out[key] = `<sha256:${createHash('sha256').update(value).digest('hex').slice(0, 16)} len:${value.length}>`;
    } else {
      out[key] = value;
    }
  }
  return redactor.redactValue(out);
}

/** Strips terminal controls from every string, then redacts secrets. */
function cleanOutput<T>(value: T, redactor: Redactor): T {
  const strip = (v: unknown): unknown => {
    if (typeof v === 'string') return stripTerminalControls(v);
    if (Array.isArray(v)) return v.map(strip);
    if (v !== null && typeof v === 'object') {
      const o: Record<string, unknown> = {};
      for (const [k, item] of Object.entries(v)) o[k] = strip(item);
      return o;
    }
    return v;
  };
  return redactor.redactValue(strip(value) as T);
}

interface Denial {
  error: SshgateError;
  rule: string;
}

function deny(code: ErrorCode, rule: string, message: string, hint?: string): Denial {
  return { error: new SshgateError(code, message, { ...(hint === undefined ? {} : { hint }), details: { rule } }), rule };
}

const KIND_TOGGLES = {
  exec: { field: 'allowExecute', key: 'allow_execute' },
  sftp_read: { field: 'allowSftpRead', key: 'allow_sftp_read' },
  sftp_write: { field: 'allowSftpWrite', key: 'allow_sftp_write' },
} as const;

/**
 * The static policy decision for a call on `host`, before anything reaches the host. Order:
 * 1. tier: the tool's tier must be at or below the host's effective tier;
 * 2. per-host toggle of the tool's kind (allow_execute, allow_sftp_read, allow_sftp_write);
 * 3. command policy on the parsed shell AST;
 * 4. lexical path policy for every path and the cwd (the remote realpath check follows in ssh/).
 * Returns null when allowed.
 */
export function decide(tool: AnyTool, input: Record<string, unknown>, host: ResolvedHost): Denial | null {
  if (!tierAllows(host.tier, tool.tier)) {
    return deny(
      'POLICY_DENIED',
      'tier',
      `${tool.name} needs tier ${tool.tier}, but host ${host.alias} allows at most ${host.tier}`,
      `An operator can raise it with hosts.${host.alias}.tier (and the global tier) in the sshgate config.`,
    );
  }
  if (tool.kind !== 'meta') {
    const toggle = KIND_TOGGLES[tool.kind];
    if (!host[toggle.field]) {
      return deny('POLICY_DENIED', toggle.key, `${tool.name} is turned off on host ${host.alias} (config key hosts.${host.alias}.${toggle.key}: false)`);
    }
  }
  const subject = tool.policy?.(input) ?? {};
  if (subject.command !== undefined) {
    const decision = checkCommand(subject.command, host.commands ?? undefined);
    if (!decision.allowed) {
      return deny('COMMAND_DENIED', decision.rule, `host ${host.alias}: ${decision.message}`);
    }
  }
  const rules = { roots: host.roots, restricted_paths: host.restrictedPaths };
  const paths = [...(subject.paths ?? []).map((p) => p.path), ...(subject.cwd === undefined ? [] : [subject.cwd])];
  for (const path of paths) {
    const decision = checkRemotePath(path, rules, { host: host.alias });
    if (!decision.allowed) return deny('PATH_DENIED', decision.rule, decision.message);
  }
  return null;
}

function errorView(err: SshgateError): ToolErrorView {
  return {
    code: err.code,
    message: err.message,
    retryable: err.retryable,
    ...(err.hint === undefined ? {} : { hint: err.hint }),
    ...(err.details === undefined ? {} : { details: err.details }),
  };
}

function errorText(view: ToolErrorView): string {
  return `${view.code}: ${view.message}${view.hint === undefined ? '' : `\nHint: ${view.hint}`}`;
}

/**
 * Runs one tool call through every cross-cutting step, in this order:
 * 1. correlation id; 2. host resolution (HOST_NOT_CONFIGURED); 3. tier, per-host toggles, command and path
 * policy ({@link decide}); 4. rate limit and concurrency slot; 5. audit log health (fail closed);
 * 6. `run`, with an AbortSignal tied to MCP cancellation and the call's timeout; 7. terminal-control
 * stripping and redaction of everything returned; 8. error mapping (unknown errors become INTERNAL with
 * the correlation id, the stack only in the log); 9. one audit record, denials included. If that record
 * cannot be written, the call is reported as AUDIT_FAILED instead of its result.
 * Never throws.
 */
export async function invokeTool(tool: AnyTool, input: Record<string, unknown>, call: CallContext, rt: Runtime): Promise<ToolCallOutcome> {
  const id = randomUUID();
  const started = performance.now();
  let decision: AuditDecision = 'allowed';
  let rule: string | null = null;
  let host: ResolvedHost | null = null;
  let outcome: ToolCallOutcome;
  let exitCode: number | null = null;
  let release: (() => void) | null = null;
  const timeoutController = new AbortController();
  let timer: NodeJS.Timeout | null = null;

  try {
    if (isHostBound(tool)) {
      const alias = input['host'];
      host = typeof alias === 'string' ? (rt.loaded.hosts.get(alias) ?? null) : null;
      if (host === null) {
        decision = 'denied';
        rule = 'hosts';
        const known = [...rt.loaded.hosts.keys()];
        throw new SshgateError('HOST_NOT_CONFIGURED', `host ${JSON.stringify(alias)} is not configured; known hosts: ${known.length === 0 ? '(none)' : known.join(', ')}`, {
          hint: 'Call ssh_list_hosts to see the configured aliases.',
        });
      }
      const denial = decide(tool, input, host);
      if (denial !== null) {
        decision = 'denied';
        rule = denial.rule;
        throw denial.error;
      }
    }
    const rateDecision = rt.rate.take(rt.principal, host?.alias ?? null, host?.rate ?? undefined);
    if (!rateDecision.ok) {
      decision = 'denied';
      rule = rateDecision.rule;
    }
    release = assertRate(rateDecision);
    if (rt.auditState.failing) {
      decision = 'denied';
      rule = 'audit';
      throw new SshgateError('AUDIT_FAILED', 'the audit log cannot be written, so no call may run until it is fixed (see the server log)');
    }

    const limits = rt.loaded.config.limits;
    const requested = tool.timeoutMs?.(input);
    const timeoutMs = Math.min(requested ?? limits.timeout_ms, limits.max_timeout_ms);
    timer = setTimeout(() => {
      timeoutController.abort(new SshgateError('COMMAND_TIMEOUT', `${tool.name} ran past its timeout of ${timeoutMs} ms`));
    }, timeoutMs);
    const signal = AbortSignal.any([call.signal, timeoutController.signal]);
    const ctx: ToolContext = {
      host,
      signal,
      timeoutMs,
      progress: call.progress ?? (() => undefined),
      remote: createHostFacade({
        pool: rt.pool,
        signal,
        limits,
        localPaths: rt.loaded.localPaths,
        progress: call.progress ?? (() => undefined),
        state: rt.state,
      }),
      inventory: rt.inventory,
      limits: { maxReadBytes: limits.max_read_bytes, maxWriteBytes: limits.max_write_bytes, maxOutputBytes: limits.max_output_bytes },
    };
    const output = (await tool.run(input, ctx)) as Record<string, unknown>;
    const cleaned = cleanOutput(output, rt.redactor);
    exitCode = typeof cleaned['exit_code'] === 'number' ? cleaned['exit_code'] : null;
    outcome = { isError: false, structured: cleaned, text: tool.summarize(cleaned) };
  } catch (err) {
    let mapped: SshgateError;
    if (isSshgateError(err)) mapped = err;
    else if (call.signal.aborted) mapped = new SshgateError('CANCELLED', 'the call was cancelled by the client');
    else {
      rt.log.error({ id, tool: tool.name, err }, 'unexpected error');
      mapped = new SshgateError('INTERNAL', `internal error (correlation id ${id}); the server log has the details`);
    }
    const view = cleanOutput(errorView(mapped), rt.redactor);
    const partial = view.details;
    if (typeof partial?.['exit_code'] === 'number') exitCode = partial['exit_code'];
    outcome = { isError: true, error: view, text: errorText(view) };
  } finally {
    if (timer !== null) clearTimeout(timer);
    release?.();
  }

  try {
    await rt.audit.append({
      id,
      tool: tool.name,
      tier: tool.tier,
      host: host?.alias ?? (typeof input['host'] === 'string' ? input['host'] : null),
      principal: rt.principal,
      decision,
      rule,
      args: auditArgs(input, rt.redactor),
      result: outcome.isError ? outcome.error.code : 'ok',
      exit_code: exitCode,
      bytes_out: Buffer.byteLength(outcome.text),
      duration_ms: Math.round(performance.now() - started),
    });
    rt.auditState.failing = false;
  } catch (err) {
    rt.auditState.failing = true;
    rt.log.error({ id, err: (err as Error).message }, 'audit record could not be written');
    const view: ToolErrorView = {
      code: 'AUDIT_FAILED',
      message: `the audit record of this call could not be written (${(err as Error).message}), so its result is withheld${
        decision === 'allowed' && tool.tier !== 'read' ? '; the operation itself may have taken effect on the host' : ''
      }`,
      retryable: false,
    };
    outcome = { isError: true, error: view, text: errorText(view) };
  }
  return outcome;
}
