// Serves MCP on stdin/stdout for both protocol eras (2026-07-28 and 2025) through the SDK's serveStdio.
import { serveStdio, type StdioServerHandle } from '@modelcontextprotocol/server/stdio';
import type { McpServer } from '@modelcontextprotocol/server';
import type { Logger } from '../log.js';

/**
 * Starts serving on the process's stdio with `factory` (called once per connection, and once for a
 * `server/discover` probe). Resolves when the client closes stdin.
 */
export function serveOnStdio(factory: () => McpServer, log: Logger): { handle: StdioServerHandle; closed: Promise<void> } {
  let onClosed: () => void = () => undefined;
  const closed = new Promise<void>((resolve) => {
    onClosed = resolve;
  });
  process.stdin.once('end', () => {
    onClosed();
  });
  process.stdin.once('close', () => {
    onClosed();
  });
  const handle = serveStdio(factory, {
    onerror: (err) => {
      log.warn({ err: err.message }, 'stdio transport error');
    },
  });
  return { handle, closed };
}
