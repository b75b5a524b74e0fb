// Builds an McpServer with the tools selected at start-up; every tool call goes through invokeTool.
import { McpServer, type CallToolResult, type ServerContext } from '@modelcontextprotocol/server';
import type { z } from 'zod';
import { deriveAnnotations, type AnyTool } from '../tools/define-tool.js';
import { invokeTool, type CallContext, type Runtime, type ToolCallOutcome } from './registry.js';

/** Name and version reported to clients. */
export const SERVER_INFO = { name: 'sshgate', version: '0.1.0' } as const;

const INSTRUCTIONS =
  'sshgate runs commands and file operations on configured SSH hosts under an operator-defined policy. ' +
  'Start with ssh_list_hosts to see the host aliases and the tier each allows (read < write < exec < sudo). ' +
  'Errors carry a code (POLICY_DENIED, PATH_DENIED, HOST_KEY_UNKNOWN, ...) and a message naming the rule; a policy ' +
  'refusal is final for this session: do not try to work around it.';

/** Converts an outcome of invokeTool into the MCP result shape. */
export function toCallToolResult(outcome: ToolCallOutcome): CallToolResult {
  if (!outcome.isError) {
    return { content: [{ type: 'text', text: outcome.text }], structuredContent: outcome.structured };
  }
  return {
    content: [{ type: 'text', text: outcome.text }],
    structuredContent: { error: { ...outcome.error } },
    isError: true,
  };
}

function callContext(ctx: ServerContext): CallContext {
  const token = ctx.mcpReq._meta?.progressToken;
  if (token === undefined) return { signal: ctx.mcpReq.signal };
  return {
    signal: ctx.mcpReq.signal,
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
  const server = new McpServer(SERVER_INFO, { capabilities: { tools: {} }, instructions: INSTRUCTIONS });
  for (const tool of tools) {
    server.registerTool(
      tool.name,
      {
        title: tool.title,
        description: tool.description,
        inputSchema: tool.input as z.ZodObject,
        outputSchema: tool.output as z.ZodObject,
        annotations: deriveAnnotations(tool),
      },
      async (args: Record<string, unknown>, ctx: ServerContext) => toCallToolResult(await invokeTool(tool, args, callContext(ctx), runtime)),
    );
  }
  return server;
}
