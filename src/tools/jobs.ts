// Background job tools.
import type { AnyTool } from './define-tool.js';

export const jobTools: readonly AnyTool[] = [];
