// Persistent shell session tools.
import type { AnyTool } from './define-tool.js';

export const shellTools: readonly AnyTool[] = [];
