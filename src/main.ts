#!/usr/bin/env node
// The bin entry. It first makes sure Node runs with sshgate's runtime flags (./cli/relaunch.ts), before anything
// else is loaded or stdin is read, then loads the CLI (./cli/program.ts): argv -> config -> server -> transport.
import { relaunchWithRuntimeFlags } from './cli/relaunch.js';

relaunchWithRuntimeFlags();
await import('./cli/program.js');
