// Every tool sshgate has, in the order they are listed to clients.
import type { AnyTool } from './define-tool.js';
import { execTools } from './exec.js';
import { fileTools } from './files.js';
import { hostTools } from './hosts.js';

export const allTools: readonly AnyTool[] = [...hostTools, ...fileTools, ...execTools];
