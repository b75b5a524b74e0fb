// One declaration per tool: name, texts, schemas, tier, group, effects and handler in one object;
// MCP annotations are derived from tier and effects, never written by hand.
import type { z } from 'zod';
import type { Config, Group } from '../config/schema.js';
import type { ResolvedHost } from '../config/load.js';
import type { Tier } from '../policy/tiers.js';
import type { HostFacade, HostInventory } from '../ssh/facade.js';

/** What a tool does to the world, beyond its tier. */
export interface ToolEffects {
  /** May destroy data (drives `destructiveHint`); needs tier >= write. */
  destructive: boolean;
  /** Calling twice with the same input has no further effect (drives `idempotentHint`). */
  idempotent: boolean;
}

/**
 * Which per-host toggle governs the tool: `allow_sftp_read`, `allow_sftp_write`, `allow_execute`, or none
 * (`meta`: connection-level tools such as ping).
 */
export type ToolKind = 'meta' | 'sftp_read' | 'sftp_write' | 'exec';

/** What the policy checks before a call runs, derived from its (validated) input. */
export interface PolicySubject {
  /** A command that will run through the remote shell (checked by the command policy). */
  command?: string;
  /** A command the operator wrote (a template): not checked by the command policy, but shown for approval. */
  operatorCommand?: string;
  /** Remote paths the call touches. */
  paths?: { path: string; access: 'read' | 'write' }[];
  /** Remote working directory (obeys the roots like a path). */
  cwd?: string;
}

/** What `invokeTool` hands a handler. Tools reach SSH and policy only through this. */
export interface ToolContext {
  /** The resolved host of the call (tools without a `host` parameter get none). */
  host: ResolvedHost | null;
  /** Aborted on MCP cancellation (reason CANCELLED) or when the call's timeout passes (COMMAND_TIMEOUT). */
  signal: AbortSignal;
  /** The call's timeout. */
  timeoutMs: number;
  /** Reports progress to the client when it sent a progress token; a no-op otherwise. */
  progress(done: number, total?: number, message?: string): void;
  /** SSH and SFTP operations on the call's host. */
  remote: HostFacade;
  /** The configured hosts (no secrets). */
  inventory: HostInventory;
  /**
   * For a tool whose hosts come from other fields (ssh_transfer_file: `source_host`, `destination_host`):
   * resolves `alias` and applies what invokeTool applies to `host` (tier, the per-host toggle of `kind`, the
   * lexical path policy of `paths`). A host whose approval rules fire for this access is refused (fail closed:
   * the approval flow binds one host per call). The host's rate and concurrency limits apply (a slot is held
   * until the call ends). A refusal is audited as a denial.
   * @throws SshgateError HOST_NOT_CONFIGURED, POLICY_DENIED, PATH_DENIED, RATE_LIMITED.
   */
  authorizeHost(alias: string, access: { tier: Tier; kind: ToolKind; paths: NonNullable<PolicySubject['paths']> }): ResolvedHost;
  /** The offered host-bound tools and whether `host`'s tier and toggles allow each (ssh_check_host). */
  toolsFor(host: ResolvedHost): { name: string; tier: Tier; allowed: boolean; reason: string | null }[];
  /** Every configured host, for tools that work on several (ssh_broadcast). */
  hosts: ReadonlyMap<string, ResolvedHost>;
  /**
   * Applies the policy of `tool` with `input` to `host`, as invokeTool does for a host-bound call (tier, toggles,
   * command and path rules, approval, rate limit), and takes the host's rate and concurrency slot.
   * Returns the function that releases the slot.
   * @throws SshgateError with the refusal (APPROVAL_REQUIRED when the host wants a human: multi-host calls cannot ask).
   */
  authorize(tool: AnyTool, input: Record<string, unknown>, host: ResolvedHost): () => void;
  /** Operator-defined command templates (config `templates`). */
  templates: Config['templates'];
  /** Size limits from the config (`limits`). */
  limits: { maxReadBytes: number; maxWriteBytes: number; maxOutputBytes: number };
}

/** A tool: see {@link defineTool}. */
export interface ToolDefinition<I extends z.ZodObject = z.ZodObject, O extends z.ZodObject = z.ZodObject> {
  /** `ssh_<verb>_<noun>`, snake_case. */
  name: string;
  /** Sentence-case imperative. */
  title: string;
  /** Written for the model: what it does, its limits, what to do on truncation. */
  description: string;
  group: Group;
  tier: Tier;
  kind: ToolKind;
  effects: ToolEffects;
  /** Flat object schema (no top-level union). A `host` field makes the tool host-bound. */
  input: I;
  output: O;
  /** What the policy checks for this input (the config is given for tools that depend on it: templates). */
  policy?: (input: z.output<I>, config: Config) => PolicySubject;
  /**
   * How secrets in the output are masked: `kind` markers (`<redacted:password>`, the default) or `digest`
   * markers (`<redacted:sha256:XXXXXXXX len:N>`, which tell two secrets apart).
   */
  redaction?: (input: z.output<I>, host: ResolvedHost | null) => 'kind' | 'digest';
  /** The tier this particular call needs, when it depends on the input (templates); default `tier`. */
  tierFor?: (input: z.output<I>, config: Config) => Tier;
  /** The call's timeout, when the input can set it (clamped to `limits.max_timeout_ms`). */
  timeoutMs?: (input: z.output<I>, config: Config) => number | undefined;
  run(input: z.output<I>, ctx: ToolContext): Promise<z.output<O>>;
  /** Short text rendering of the output, for clients that ignore structuredContent. */
  summarize(output: z.output<O>): string;
}

/** A tool definition with its schema types erased, for registries. */
// eslint-disable-next-line @typescript-eslint/no-explicit-any -- the registry holds tools of many input types; each is checked where it is defined.
export type AnyTool = ToolDefinition<any, any>;

/** Declares a tool; the identity function, kept for type inference and one place to hang invariants. */
export function defineTool<I extends z.ZodObject, O extends z.ZodObject>(def: ToolDefinition<I, O>): ToolDefinition<I, O> {
  return def;
}

/** MCP tool annotations, derived from tier and effects (spec: ToolAnnotations). */
export interface DerivedAnnotations {
  title: string;
  readOnlyHint: boolean;
  destructiveHint: boolean;
  idempotentHint: boolean;
  openWorldHint: boolean;
}

/** `readOnlyHint` iff tier is read; remote hosts are an open world. */
export function deriveAnnotations(tool: AnyTool): DerivedAnnotations {
  return {
    title: tool.title,
    readOnlyHint: tool.tier === 'read',
    destructiveHint: tool.effects.destructive,
    idempotentHint: tool.effects.idempotent,
    openWorldHint: true,
  };
}

/** True when the tool takes a `host` argument. */
export function isHostBound(tool: AnyTool): boolean {
  return 'host' in (tool.input as z.ZodObject).shape;
}
