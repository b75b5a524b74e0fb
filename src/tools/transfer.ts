// Transfer tools: upload, download, host to host.
import type { AnyTool } from './define-tool.js';

export const transferTools: readonly AnyTool[] = [];
