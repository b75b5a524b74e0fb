// Streamed, verified, resumable transfers between this machine and hosts, and between hosts.
import type { FacadeDeps } from './facade.js';

/** The transfer operations tools may use (see facade.ts). */
// eslint-disable-next-line @typescript-eslint/no-generated-empty-object-type -- the group has no operations yet.
export type TransferFacade = Record<never, never>;

/** Creates the transfer operations for one call. */
export function createTransferFacade(_deps: FacadeDeps): TransferFacade {
  return {};
}
