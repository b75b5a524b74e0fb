// Background jobs that survive a dropped connection: detached on the host with pid, log and exit files.
import type { FacadeDeps } from './facade.js';

/** The jobs operations tools may use (see facade.ts). */
// eslint-disable-next-line @typescript-eslint/no-generated-empty-object-type -- the group has no operations yet.
export type JobsFacade = Record<never, never>;

/** Creates the jobs operations for one call. */
export function createJobsFacade(_deps: FacadeDeps): JobsFacade {
  return {};
}
