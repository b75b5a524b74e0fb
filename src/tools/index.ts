// Every tool sshgate has, in the order they are listed to clients.
import type { AnyTool } from './define-tool.js';
import { execTools } from './exec.js';
import { fileTools } from './files.js';
import { fileOpsTools } from './file-ops.js';
import { hostTools } from './hosts.js';
import { jobTools } from './jobs.js';
import { shellTools } from './shell.js';
import { sudoTools } from './sudo.js';
import { transferTools } from './transfer.js';

export const allTools: readonly AnyTool[] = [...hostTools, ...fileTools, ...fileOpsTools, ...transferTools, ...execTools, ...jobTools, ...shellTools, ...sudoTools];
