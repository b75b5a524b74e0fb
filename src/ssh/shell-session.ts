// Persistent shell sessions: POSIX shells framed by markers, and CLI devices driven through a PTY.
import type { FacadeDeps } from './facade.js';

/** The shell operations tools may use (see facade.ts). */
// eslint-disable-next-line @typescript-eslint/no-generated-empty-object-type -- the group has no operations yet.
export type ShellFacade = Record<never, never>;

/** Creates the shell operations for one call. */
export function createShellFacade(_deps: FacadeDeps): ShellFacade {
  return {};
}
