// Polling helpers for integration tests that watch the host (processes, files) change after a call.
import { execFileSync } from 'node:child_process';

/** Checks `check` every 50 ms until it holds or `ms` milliseconds pass; returns its last answer. */
export async function waitFor(check: () => boolean | Promise<boolean>, ms = 5000): Promise<boolean> {
  const until = Date.now() + ms;
  while (Date.now() < until) {
    if (await check()) return true;
    await new Promise((r) => setTimeout(r, 50));
  }
  return check();
}

/** Processes on this machine (the test sshd is local) whose command line contains `needle`, as `pid args` lines. */
export function localProcesses(needle: string): string[] {
  const out = execFileSync('ps', ['-eo', 'pid=,args='], { encoding: 'utf8' });
  return out.split('\n').filter((l) => l.includes(needle) && !l.includes('ps -eo'));
}
