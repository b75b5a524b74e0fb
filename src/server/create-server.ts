// Builds an McpServer with the tools selected at start-up; every tool call goes through invokeTool.
import { randomBytes } from 'node:crypto';
import {
  CLIENT_CAPABILITIES_META_KEY,
  createRequestStateCodec,
  inputRequired,
  McpServer,
  type CallToolResult,
  type ClientCapabilities,
  type InputRequiredResult,
  type RequestStateCodec,
  type ServerContext,
} from '@modelcontextprotocol/server';
import { z } from 'zod';
import { deriveAnnotations, type AnyTool } from '../tools/define-tool.js';
import { registerPrompts, registerResources } from './resources.js';
import { invokeTool, type ApprovalState, type CallContext, type Runtime, type ToolCallOutcome } from './registry.js';

/** Name and version reported to clients. */
export const SERVER_INFO = { name: 'sshgate', version: '0.1.0' } as const;

const INSTRUCTIONS =
  'sshgate runs commands and file operations on configured SSH hosts under an operator-defined policy. ' +
  'Start with ssh_list_hosts to see the host aliases and the tier each allows (read < write < exec < sudo). ' +
  'Errors carry a code (POLICY_DENIED, PATH_DENIED, HOST_KEY_UNKNOWN, ...) and a message naming the rule; a policy ' +
  'refusal is final for this session: do not try to work around it.';

/** Converts an outcome of invokeTool into the MCP result shape. */
export function toCallToolResult(outcome: ToolCallOutcome): CallToolResult | InputRequiredResult {
  if (outcome.status === 'input-required') {
    return inputRequired({
      inputRequests: {
        approve: inputRequired.elicit({ message: outcome.message, requestedSchema: APPROVAL_SCHEMA }),
      },
      requestState: outcome.requestState,
    });
  }
  if (outcome.status === 'ok') {
    return { content: [{ type: 'text', text: outcome.text }], structuredContent: outcome.structured };
  }
  return {
    content: [{ type: 'text', text: outcome.text }],
    structuredContent: { error: { ...outcome.error } },
    isError: true,
  };
}

/** The form a human answers to approve a call. */
const APPROVAL_SCHEMA = {
  type: 'object' as const,
  properties: { approve: { type: 'boolean' as const, title: 'Approve this call', description: 'Run exactly the call shown above, once.' } },
  required: ['approve'],
};

/** True when the client declared form elicitation (for this request in the 2026-07-28 era, at initialize before). */
function clientCanElicit(server: McpServer, ctx: ServerContext): boolean {
  const envelope = ctx.mcpReq.envelope as Record<string, unknown> | undefined;
  const perRequest = envelope?.[CLIENT_CAPABILITIES_META_KEY] as ClientCapabilities | undefined;
  // eslint-disable-next-line @typescript-eslint/no-deprecated -- on 2025-era connections this is the initialize-scoped value we need.
  const caps = perRequest ?? server.server.getClientCapabilities();
  const elicitation = caps?.elicitation as { form?: unknown } | undefined;
  // An empty elicitation capability means form mode (spec: backwards compatibility).
  return elicitation !== undefined && (elicitation.form !== undefined || Object.keys(elicitation).length === 0);
}

function callContext(server: McpServer, ctx: ServerContext, codec: RequestStateCodec<ApprovalState>): CallContext {
  const token = ctx.mcpReq._meta?.progressToken;
  const elicit: CallContext['elicit'] = clientCanElicit(server, ctx)
    ? {
        responses: ctx.mcpReq.inputResponses,
        state: ctx.mcpReq.requestState<ApprovalState>(),
        mint: (payload) => codec.mint(payload),
      }
    : undefined;
  const base: CallContext = { signal: ctx.mcpReq.signal, ...(elicit === undefined ? {} : { elicit }) };
  if (token === undefined) return base;
  return {
    ...base,
    progress: (done, total, message) => {
      void ctx.mcpReq
        .notify({
          method: 'notifications/progress',
          params: { progressToken: token, progress: done, ...(total === undefined ? {} : { total }), ...(message === undefined ? {} : { message }) },
        })
        .catch(() => undefined);
    },
  };
}

/**
 * Creates one McpServer instance (the SDK's factories call this once per connection, and once for a
 * discarded `server/discover` probe) with `tools` registered; all instances share `runtime`.
 */
export function createServer(tools: readonly AnyTool[], runtime: Runtime): McpServer {
  const codec = approvalCodec(runtime);
  runtime.tools = tools;
  const server = new McpServer(SERVER_INFO, {
    capabilities: { tools: {}, resources: {}, prompts: {} },
    instructions: INSTRUCTIONS,
    // Security: the approval state round-trips through the client; only an HMAC-verified state is accepted.
    requestState: { verify: (state, ctx) => codec.verify(state, ctx) },
  });
  for (const tool of tools) {
    const input = tool.input as z.ZodObject;
    server.registerTool(
      tool.name,
      {
        title: tool.title,
        description: tool.description,
        // Tools that change hosts accept the id of an approval the operator granted in a terminal.
        inputSchema: tool.tier === 'read' ? input : input.extend({ approval_id: APPROVAL_ID_FIELD }),
        outputSchema: tool.output as z.ZodObject,
        annotations: deriveAnnotations(tool),
      },
      async (args: Record<string, unknown>, ctx: ServerContext) => toCallToolResult(await invokeTool(tool, args, callContext(server, ctx, codec), runtime)),
    );
  }
  registerResources(server, runtime, tools, SERVER_INFO.version);
  registerPrompts(server);
  return server;
}

const APPROVAL_ID_FIELD = z
  .string()
  .optional()
  .describe('Only when a previous call was refused with APPROVAL_REQUIRED and the operator has approved it: the approval_id from that refusal. Repeat the call unchanged.');

const codecs = new WeakMap<Runtime, RequestStateCodec<ApprovalState>>();

/** One HMAC codec per runtime (a random key per process: every round of a stdio flow reaches the same process). */
function approvalCodec(runtime: Runtime): RequestStateCodec<ApprovalState> {
  let codec = codecs.get(runtime);
  if (codec === undefined) {
    codec = createRequestStateCodec<ApprovalState>({ key: randomBytes(32), ttlSeconds: Math.ceil(runtime.loaded.config.approvals.ttl_ms / 1000) });
    codecs.set(runtime, codec);
  }
  return codec;
}
