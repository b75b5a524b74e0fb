// File tools beyond read and write (issue 4).
import type { AnyTool } from './define-tool.js';

export const fileOpsTools: readonly AnyTool[] = [];
