// File operations beyond read and write: find, hash, diff, edit, patch, mkdir, remove, copy, move.
import type { FacadeDeps } from './facade.js';

/** The file operations tools may use (see facade.ts). */
// eslint-disable-next-line @typescript-eslint/no-generated-empty-object-type -- the group has no operations yet.
export type FileOpsFacade = Record<never, never>;

/** Creates the file operations for one call. */
export function createFileOpsFacade(_deps: FacadeDeps): FileOpsFacade {
  return {};
}
