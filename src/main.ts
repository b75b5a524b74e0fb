#!/usr/bin/env node
// The bin entry. It first makes sure Node runs with sshgate's runtime flags (./cli/relaunch.ts), before anything
// else is loaded or stdin is read, keeps an unsafe ssh2 native binding from loading (./ssh/native-crypto.ts), then
// loads the CLI (./cli/program.ts): argv -> config -> server -> transport.
import { relaunchWithRuntimeFlags } from './cli/relaunch.js';
import { guardNativeCrypto } from './ssh/native-crypto.js';

relaunchWithRuntimeFlags();
guardNativeCrypto();
await import('./cli/program.js');
