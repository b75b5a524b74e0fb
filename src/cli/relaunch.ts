// Relaunches Node with the V8 flags sshgate is measured with. Imported first by src/main.ts: no other imports here,
// so the relaunch happens before the rest of the program is even parsed.

/**
 * The flags. `--single-threaded-gc` runs V8's garbage collector on the main thread only. A transfer allocates a
 * buffer per SSH packet inside ssh2; with V8's default concurrent and parallel GC threads, collecting them cost
 * 0.5 to 0.8 CPU seconds per 256 MiB download on other threads, on top of 0.4 to 0.5 s on the main thread, and on a
 * machine whose cores are also busy with sshd that slowed the transfer itself (bench/transfer.mjs, 2 cores:
 * 299 -> 363 MiB/s median, client CPU 1.01 -> 0.71 s). V8 reads these flags only at start-up: setting them later
 * (`v8.setFlagsFromString`) has no effect or aborts the process.
 */
export const RUNTIME_FLAGS: readonly string[] = ['--single-threaded-gc'];

/** Set in the relaunched process's environment, so that it never relaunches again. */
export const RELAUNCHED_ENV = 'SSHGATE_RELAUNCHED';

/** Set to `1` by an operator to keep V8's default (parallel) garbage collector. */
export const PARALLEL_GC_ENV = 'SSHGATE_PARALLEL_GC';

/** What {@link relaunchPlan} looks at: the parts of `process` it reads. */
export interface RelaunchInput {
  execPath: string;
  execArgv: readonly string[];
  argv: readonly string[];
  env: Readonly<Record<string, string | undefined>>;
  platform: string;
  canExecve: boolean;
}

/**
 * The `execve` arguments (`args` starting with the executable, `env`) that restart this process with
 * {@link RUNTIME_FLAGS}, or null when no relaunch is needed or possible: the flags are already there, this is the
 * relaunched process, the operator opted out with `SSHGATE_PARALLEL_GC=1`, or the platform has no `execve`
 * (Windows, Node < 22.15). Node's own flags (`execArgv`) and the script arguments are kept in order.
 */
export function relaunchPlan(input: RelaunchInput): { args: string[]; env: Record<string, string> } | null {
  const missing = RUNTIME_FLAGS.filter((flag) => !input.execArgv.includes(flag));
  if (missing.length === 0 || !input.canExecve || input.platform === 'win32') return null;
  if (input.env[RELAUNCHED_ENV] === '1' || input.env[PARALLEL_GC_ENV] === '1') return null;
  const env: Record<string, string> = {};
  for (const [key, value] of Object.entries(input.env)) if (value !== undefined) env[key] = value;
  env[RELAUNCHED_ENV] = '1';
  return { args: [input.execPath, ...missing, ...input.execArgv, ...input.argv.slice(1)], env };
}

/**
 * Replaces this process with one running the same script under {@link RUNTIME_FLAGS} (same pid, same stdin,
 * stdout and stderr; nothing has been read or written yet). Returns only when no relaunch is needed, or when
 * `execve` failed: then sshgate runs on with Node's defaults, which work, only slower.
 */
export function relaunchWithRuntimeFlags(): void {
  const plan = relaunchPlan({
    execPath: process.execPath,
    execArgv: process.execArgv,
    argv: process.argv,
    env: process.env,
    platform: process.platform,
    canExecve: typeof process.execve === 'function',
  });
  if (plan === null || process.execve === undefined) return;
  try {
    process.execve(process.execPath, plan.args, plan.env);
  } catch {
    // Nothing to report on stdout (it is the MCP channel); the defaults are a working fallback.
  }
}
