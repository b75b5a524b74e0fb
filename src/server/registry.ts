// Tool selection (once, at start-up) and invokeTool: the one place for every cross-cutting concern of a call.
import { createHash, randomUUID } from 'node:crypto';
import { SshgateError, isSshgateError, type ErrorCode } from '../errors.js';
import type { LoadedConfig, ResolvedHost } from '../config/load.js';
import { GROUPS, type Config, type Group } from '../config/schema.js';
import type { Logger } from '../log.js';
import type { AuditLog, AuditDecision } from '../audit/audit-log.js';
import { tierAllows, type Tier } from '../policy/tiers.js';
import { assertRate, type RateLimiter } from '../policy/rate-limit.js';
import { checkCommand } from '../policy/command-policy.js';
import { checkCliCommand } from '../policy/cli-policy.js';
import type { RedactionMode, Redactor } from '../policy/redaction.js';
import { createHostFacade, type HostInventory } from '../ssh/facade.js';
import { approvalRuleFor, callDigest } from '../policy/approval.js';
import type { ApprovalStore } from './approvals.js';
import type { ConnectionPool } from '../ssh/pool.js';
import { personalityOf } from '../ssh/personality.js';
import type { ServerState } from '../ssh/state.js';
import { isHostBound, type AnyTool, type PolicySubject, type ToolContext } from '../tools/define-tool.js';

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
  /** Pending approvals of the terminal channel. */
  approvals: ApprovalStore;
  /** Nonces of elicitation approvals already used (single use), with their expiry (ms since epoch). */
  approvalNonces: Map<string, number>;
  /** Per-server singletons of the facade groups (shell sessions, spools). */
  state: ServerState;
  /** Set while the audit log fails; calls are then refused before they run (fail closed). */
  auditState: { failing: boolean };
  /** The tools this server offers (set by createServer), for ssh_check_host. */
  tools: readonly AnyTool[];
}

/** What the transport hands a call. */
export interface CallContext {
  /** Aborted when the client cancels the request or goes away. */
  signal: AbortSignal;
  /** Sends an MCP progress notification; absent when the client sent no progress token. */
  progress?: (done: number, total?: number, message?: string) => void;
  /** The client's way to ask its human (form elicitation / input-required); absent when it has none. */
  elicit?: ElicitChannel;
}

/** What invokeTool needs to ask the client's human for an approval (MCP input-required / form elicitation). */
export interface ElicitChannel {
  /** Answers of a retried request (`inputResponses`), undefined on the first round. */
  responses: Record<string, unknown> | undefined;
  /** The verified `requestState` payload of a retried request. */
  state: unknown;
  /** Seals a payload into an integrity-protected `requestState`. */
  mint(payload: ApprovalState): Promise<string>;
}

/** The state an elicitation approval carries between rounds (HMAC-sealed by the SDK codec). */
export interface ApprovalState {
  digest: string;
  nonce: string;
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
  | { status: 'ok'; structured: Record<string, unknown>; text: string }
  | { status: 'error'; error: ToolErrorView; text: string }
  | { status: 'input-required'; message: string; requestState: string };

/** Input fields whose content is summarised (digest and length) in the audit log rather than copied. */
const BULKY_FIELDS = new Set(['content', 'stdin', 'text', 'patch', 'edits']);

function auditArgs(input: Record<string, unknown>, redactor: Redactor): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(input)) {
    if (BULKY_FIELDS.has(key) && value !== undefined) {
      const text = typeof value === 'string' ? value : JSON.stringify(value);
      out[key] = `<sha256:${createHash('sha256').update(text).digest('hex').slice(0, 16)} len:${text.length}>`;
    } else {
      out[key] = value;
    }
  }
  return redactor.redactValue(out);
}

/** Strips terminal control sequences from every string and redacts secrets (Redactor.redact does both). */
function cleanOutput<T>(value: T, redactor: Redactor, mode: RedactionMode): T {
  return redactor.redactValue(value, mode);
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

/** Steps 1 and 2 of {@link decide}: the tier `need` against the host's, then the per-host toggle of the tool's kind. */
export function accessDenial(tool: AnyTool, need: Tier, host: ResolvedHost): Denial | null {
  if (!tierAllows(host.tier, need)) {
    return deny(
      'POLICY_DENIED',
      'tier',
      `${tool.name}${need === tool.tier ? '' : ' (this call)'} needs tier ${need}, but host ${host.alias} allows at most ${host.tier}`,
      `An operator can raise it with hosts.${host.alias}.tier (and the global tier) in the sshgate config.`,
    );
  }
  if (tool.kind !== 'meta') {
    const toggle = KIND_TOGGLES[tool.kind];
    if (!host[toggle.field]) {
      return deny('POLICY_DENIED', toggle.key, `${tool.name} is turned off on host ${host.alias} (config key hosts.${host.alias}.${toggle.key}: false)`);
    }
  }
  return null;
}

/**
 * The static policy decision for a call on `host`, before anything reaches the host. Order:
 * 1. tier: the tool's tier must be at or below the host's effective tier;
 * 2. per-host toggle of the tool's kind (allow_execute, allow_sftp_read, allow_sftp_write);
 * 3. command policy on the parsed shell AST;
 * 4. lexical path policy for every path and the cwd (the remote realpath check follows in ssh/).
 * Returns null when allowed.
 */
export function decide(tool: AnyTool, input: Record<string, unknown>, host: ResolvedHost, config: Config): Denial | null {
  const access = accessDenial(tool, tool.tierFor?.(input, config) ?? tool.tier, host);
  if (access !== null) return access;
  const subject = tool.policy?.(input, config) ?? {};
  if (subject.command !== undefined) {
    // A device CLI has no shell grammar: its lines are matched whole by the host's regexes (policy/cli-policy.ts).
    const decision = host.platform === 'cli' ? checkCliCommand(subject.command, host.commands ?? undefined) : checkCommand(subject.command, host.commands ?? undefined);
    if (!decision.allowed) {
      return deny('COMMAND_DENIED', decision.rule, `host ${host.alias}: ${decision.message}`);
    }
  }
  const rules = { roots: host.roots, restricted_paths: host.restrictedPaths };
  const paths = [...(subject.paths ?? []).map((p) => p.path), ...(subject.cwd === undefined ? [] : [subject.cwd])];
  for (const path of paths) {
    // The host's path personality: POSIX, or Windows (drive letters, case-insensitive roots).
    const decision = personalityOf(host).check(path, rules, { host: host.alias });
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
export async function invokeTool(tool: AnyTool, rawInput: Record<string, unknown>, call: CallContext, rt: Runtime): Promise<ToolCallOutcome> {
  const id = randomUUID();
  const started = performance.now();
  const { approval_id: approvalIdRaw, ...input } = rawInput;
  const approvalId = typeof approvalIdRaw === 'string' ? approvalIdRaw : null;
  let decision: AuditDecision = 'allowed';
  let rule: string | null = null;
  let approvedBy: string | null = null;
  let host: ResolvedHost | null = null;
  let outcome: ToolCallOutcome;
  let exitCode: number | null = null;
  let release: (() => void) | null = null;
  // Rate slots taken by ctx.authorizeHost for the other hosts of a call (ssh_transfer_file), freed with `release`.
  const hostReleases: (() => void)[] = [];
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
      const denial = decide(tool, input, host, rt.loaded.config);
      if (denial !== null) {
        decision = 'denied';
        rule = denial.rule;
        throw denial.error;
      }
    }
    if (tool.tier !== 'read') {
      const marked = findRedactionMarker(input);
      if (marked !== null) {
        decision = 'denied';
        rule = 'redaction_marker';
        throw new SshgateError(
          'INVALID_INPUT',
          `${marked}: contains a redaction marker (<redacted:...>); writing it would replace a secret with the marker. Change only the parts you need (ssh_edit_file) and leave secret values out`,
        );
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

    if (host !== null && host.approval.length > 0) {
      const subject = tool.policy?.(input, rt.loaded.config) ?? {};
      const command = subject.command ?? subject.operatorCommand;
      const fired = approvalRuleFor(host.approval, { tier: tool.tierFor?.(input, rt.loaded.config) ?? tool.tier, destructive: tool.effects.destructive, command });
      if (fired !== null) {
        const approvalRule = `hosts.${host.alias}.approval: ${fired}`;
        rule = approvalRule;
        const digest = callDigest({ host: host.alias, tool: tool.name, args: input });
        const gate = await approvalGate({ tool, host, input, digest, approvalRule, approvalId, subject: command === undefined ? subject : { ...subject, command }, call, rt });
        if (gate.kind === 'ask') {
          decision = 'denied';
          outcome = { status: 'input-required', message: gate.message, requestState: gate.requestState };
          await writeAudit(rt, { id, tool, host, input, decision, rule, approvedBy, result: 'APPROVAL_REQUIRED', exitCode, text: gate.message, started });
          return outcome;
        }
        if (gate.kind === 'refused') {
          decision = 'refused-approval';
          throw gate.error;
        }
        if (gate.kind === 'pending') {
          decision = 'denied';
          throw gate.error;
        }
        decision = 'approved';
        approvedBy = gate.by;
      }
    }

    const limits = rt.loaded.config.limits;
    const requested = tool.timeoutMs?.(input, rt.loaded.config);
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
        spool: rt.loaded.config.spool,
        jobs: rt.loaded.config.jobs,
        addSecret: (value) => {
          rt.redactor.addSecret(value);
        },
        transfers: rt.loaded.config.transfers,
        shells: rt.loaded.config.shells,
      }),
      inventory: rt.inventory,
      hosts: rt.loaded.hosts,
      toolsFor: (target) =>
        rt.tools
          .filter(isHostBound)
          .map((t) => {
            const denial = accessDenial(t, t.tier, target);
            return { name: t.name, tier: t.tier, allowed: denial === null, reason: denial === null ? null : denial.error.message };
          }),
      authorize: (subTool, subInput, subHost) => {
        const denial = decide(subTool, subInput, subHost, rt.loaded.config);
        if (denial !== null) throw denial.error;
        if (subHost.approval.length > 0) {
          const subject = subTool.policy?.(subInput, rt.loaded.config) ?? {};
          const fired = approvalRuleFor(subHost.approval, {
            tier: subTool.tierFor?.(subInput, rt.loaded.config) ?? subTool.tier,
            destructive: subTool.effects.destructive,
            command: subject.command ?? subject.operatorCommand,
          });
          if (fired !== null) {
            throw new SshgateError(
              'APPROVAL_REQUIRED',
              `host ${subHost.alias} needs a human's approval for this (rule hosts.${subHost.alias}.approval: ${fired}); a multi-host call cannot ask, so run it on this host with ${subTool.name}`,
            );
          }
        }
        return assertRate(rt.rate.take(rt.principal, subHost.alias, subHost.rate ?? undefined));
      },
      authorizeHost: (alias, access) => {
        // Same checks as for `host` (decide), with this access's tier, toggle and paths.
        const other = rt.loaded.hosts.get(alias);
        let denial: Denial | null;
        if (other === undefined) {
          denial = deny('HOST_NOT_CONFIGURED', 'hosts', `host ${JSON.stringify(alias)} is not configured; known hosts: ${[...rt.loaded.hosts.keys()].join(', ') || '(none)'}`);
        } else {
          denial = decide({ ...tool, tier: access.tier, kind: access.kind, policy: () => ({ paths: access.paths }) }, input, other, rt.loaded.config);
          const fired = denial === null ? approvalRuleFor(other.approval, { tier: access.tier, destructive: access.tier !== 'read' && tool.effects.destructive }) : null;
          if (fired !== null) {
            // Security: the approval flow binds one host per call, so a second host that needs one is refused, never skipped.
            denial = deny('POLICY_DENIED', `hosts.${alias}.approval`, `${tool.name} would need a human approval on host ${alias} (rule hosts.${alias}.approval: ${fired}), which it cannot ask for; use ssh_download_file and ssh_upload_file instead`);
          }
        }
        if (denial === null && other !== undefined) {
          // Each host a call touches counts against that host's rate and concurrency limits, as `host` does.
          const taken = rt.rate.take(rt.principal, other.alias, other.rate ?? undefined);
          if (!taken.ok) {
            decision = 'denied';
            rule = taken.rule;
          }
          hostReleases.push(assertRate(taken));
          return other;
        }
        decision = 'denied';
        rule = denial?.rule ?? 'hosts';
        throw denial?.error ?? new SshgateError('INTERNAL', 'host authorization failed');
      },
      templates: rt.loaded.config.templates,
      limits: { maxReadBytes: limits.max_read_bytes, maxWriteBytes: limits.max_write_bytes, maxOutputBytes: limits.max_output_bytes },
    };
    const output = (await tool.run(input, ctx)) as Record<string, unknown>;
    const cleaned = cleanOutput(output, rt.redactor, tool.redaction?.(input, host) ?? 'kind');
    exitCode = typeof cleaned['exit_code'] === 'number' ? cleaned['exit_code'] : null;
    outcome = { status: 'ok', structured: cleaned, text: tool.summarize(cleaned) };
  } catch (err) {
    let mapped: SshgateError;
    if (isSshgateError(err)) mapped = err;
    else if (call.signal.aborted) mapped = new SshgateError('CANCELLED', 'the call was cancelled by the client');
    else {
      rt.log.error({ id, tool: tool.name, err }, 'unexpected error');
      mapped = new SshgateError('INTERNAL', `internal error (correlation id ${id}); the server log has the details`);
    }
    const view = cleanOutput(errorView(mapped), rt.redactor, 'kind');
    const partial = view.details;
    if (typeof partial?.['exit_code'] === 'number') exitCode = partial['exit_code'];
    outcome = { status: 'error', error: view, text: errorText(view) };
  } finally {
    if (timer !== null) clearTimeout(timer);
    release?.();
    for (const free of hostReleases) free();
  }

  const failure = await writeAudit(rt, {
    id,
    tool,
    host,
    input,
    decision,
    rule,
    approvedBy,
    result: outcome.status === 'error' ? outcome.error.code : 'ok',
    exitCode,
    text: outcome.text,
    started,
  });
  if (failure !== null) {
    const view: ToolErrorView = {
      code: 'AUDIT_FAILED',
      message: `the audit record of this call could not be written (${failure}), so its result is withheld${
        decision !== 'denied' && tool.tier !== 'read' ? '; the operation itself may have taken effect on the host' : ''
      }`,
      retryable: false,
    };
    outcome = { status: 'error', error: view, text: errorText(view) };
  }
  return outcome;
}

interface AuditInput {
  id: string;
  tool: AnyTool;
  host: ResolvedHost | null;
  input: Record<string, unknown>;
  decision: AuditDecision;
  rule: string | null;
  approvedBy: string | null;
  result: string;
  exitCode: number | null;
  text: string;
  started: number;
}

/** Writes the call's audit record; returns null, or the failure message (the call is then refused). */
async function writeAudit(rt: Runtime, a: AuditInput): Promise<string | null> {
  try {
    await rt.audit.append({
      id: a.id,
      tool: a.tool.name,
      tier: a.tool.tier,
      host: a.host?.alias ?? (typeof a.input['host'] === 'string' ? a.input['host'] : null),
      principal: rt.principal,
      decision: a.decision,
      rule: a.rule,
      approved_by: a.approvedBy,
      args: auditArgs(a.input, rt.redactor),
      result: a.result,
      exit_code: a.exitCode,
      bytes_out: Buffer.byteLength(a.text),
      duration_ms: Math.round(performance.now() - a.started),
    });
    rt.auditState.failing = false;
    return null;
  } catch (err) {
    rt.auditState.failing = true;
    rt.log.error({ id: a.id, err: (err as Error).message }, 'audit record could not be written');
    return (err as Error).message;
  }
}

/** The first string field (dotted path) of `value` that contains a redaction marker, or null. */
function findRedactionMarker(value: unknown, path = ''): string | null {
  if (typeof value === 'string') return value.includes('<redacted:') ? path || '(input)' : null;
  if (Array.isArray(value)) {
    for (const [i, item] of value.entries()) {
      const found = findRedactionMarker(item, `${path}[${i}]`);
      if (found !== null) return found;
    }
    return null;
  }
  if (value !== null && typeof value === 'object') {
    for (const [key, item] of Object.entries(value)) {
      const found = findRedactionMarker(item, path === '' ? key : `${path}.${key}`);
      if (found !== null) return found;
    }
  }
  return null;
}

type GateResult =
  | { kind: 'approved'; by: string }
  | { kind: 'ask'; message: string; requestState: string }
  | { kind: 'pending'; error: SshgateError }
  | { kind: 'refused'; error: SshgateError };

interface GateInput {
  tool: AnyTool;
  host: ResolvedHost;
  input: Record<string, unknown>;
  digest: string;
  approvalRule: string;
  approvalId: string | null;
  subject: PolicySubject;
  call: CallContext;
  rt: Runtime;
}

/** A human-readable account of what a call will do, for the person approving it. */
function describeCall(g: Pick<GateInput, 'tool' | 'host' | 'input' | 'subject'>): string {
  const lines = [`Host: ${g.host.alias} (${g.host.user}@${g.host.hostname}:${g.host.port})`, `Tool: ${g.tool.name}`];
  if (g.subject.command !== undefined) lines.push(`Command: ${g.subject.command}`);
  if (g.subject.cwd !== undefined) lines.push(`Working directory: ${g.subject.cwd}`);
  for (const p of g.subject.paths ?? []) lines.push(`${p.access === 'write' ? 'Writes' : 'Reads'}: ${p.path}`);
  for (const field of BULKY_FIELDS) {
    const value = g.input[field];
    if (typeof value === 'string') {
      lines.push(`${field}: ${Buffer.byteLength(value)} bytes, sha256 ${createHash('sha256').update(value).digest('hex')}`);
      const preview = value.length > 600 ? `${value.slice(0, 600)}...` : value;
      lines.push(preview.split('\n').map((l) => `  | ${l}`).join('\n'));
    } else if (Array.isArray(value)) {
      for (const [i, edit] of value.entries()) {
        const e = edit as { old_text?: unknown; new_text?: unknown };
        lines.push(`${field}[${i}]: ${JSON.stringify(e.old_text).slice(0, 300)} -> ${JSON.stringify(e.new_text).slice(0, 300)}`);
      }
    }
  }
  return lines.join('\n');
}

/**
 * The approval step. Channels, best first: an `approval_id` the operator approved in a terminal; the client's
 * own human through input-required / form elicitation (the answer comes back with an HMAC-sealed state bound
 * to this call's digest and a single-use nonce); otherwise a pending request for `sshgate approve`.
 * Security: nothing the model sends can approve: an id only points at the operator's decision, and the
 * elicitation answer comes from the client's UI with state the model cannot forge.
 */
async function approvalGate(g: GateInput): Promise<GateResult> {
  const { rt, call } = g;
  const what = describeCall(g);
  if (g.approvalId !== null) {
    const request = await rt.approvals.consume(g.approvalId, g.digest, rt.principal).catch((err: unknown) => err as SshgateError);
    if (request instanceof SshgateError) return request.code === 'APPROVAL_REQUIRED' ? { kind: 'pending', error: request } : { kind: 'refused', error: request };
    return { kind: 'approved', by: request.decided_by ?? 'operator' };
  }
  if (call.elicit !== undefined) {
    const state = call.elicit.state as Partial<ApprovalState> | undefined;
    if (call.elicit.responses === undefined || state === undefined) {
      const nonce = randomUUID();
      return {
        kind: 'ask',
        message: `sshgate asks a human to approve this call (rule ${g.approvalRule}):\n${what}\nApprove only if this is exactly what you want to happen.`,
        requestState: await call.elicit.mint({ digest: g.digest, nonce }),
      };
    }
    const now = Date.now();
    for (const [n, expires] of rt.approvalNonces) if (expires < now) rt.approvalNonces.delete(n);
    if (state.digest !== g.digest || typeof state.nonce !== 'string') {
      return { kind: 'refused', error: new SshgateError('APPROVAL_DENIED', 'the approval answer was given for a different call') };
    }
    if (rt.approvalNonces.has(state.nonce)) {
      return { kind: 'refused', error: new SshgateError('APPROVAL_DENIED', 'this approval was already used; each approval covers one call') };
    }
    rt.approvalNonces.set(state.nonce, now + rt.loaded.config.approvals.ttl_ms);
    const answer = call.elicit.responses['approve'] as { action?: string; content?: { approve?: unknown } } | undefined;
    if (answer?.action === 'accept' && answer.content?.approve === true) return { kind: 'approved', by: 'client-elicitation' };
    return {
      kind: 'refused',
      error: new SshgateError('APPROVAL_DENIED', `the human ${answer?.action === 'accept' ? 'did not approve' : answer?.action === 'cancel' ? 'cancelled' : 'declined'} this call; it did not run`),
    };
  }
  const request = await rt.approvals.create({
    host: g.host.alias,
    tool: g.tool.name,
    rule: g.approvalRule,
    summary: what,
    args: auditArgs(g.input, rt.redactor),
    digest: g.digest,
    principal: rt.principal,
  });
  return {
    kind: 'pending',
    error: new SshgateError(
      'APPROVAL_REQUIRED',
      `this call needs a human's approval (rule ${g.approvalRule}); nothing ran. Ask the operator to run \`sshgate approve ${request.id}\` in a terminal, ` +
        `then repeat exactly the same call with approval_id: "${request.id}" (it expires at ${request.expires_at})`,
      { details: { approval_id: request.id, expires_at: request.expires_at, rule: g.approvalRule } },
    ),
  };
}
