// Keeps ssh2's native crypto binding from aborting sshgate: loaded only when it is known to be safe in this Node.
// Imported by src/main.ts before anything loads ssh2; node built-ins only.
import { existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';

/**
 * Why the binding was kept from loading, or null when it was not. Read by `sshgate serve` for its start-up warning.
 */
export let nativeCryptoBlocked: string | null = null;

/**
 * True for the Node releases whose `node::ObjectWrap` header makes an addon abort when the GC collects a wrapped
 * object: 24.19 and later 24.x (nodejs/node#65446, mscdex/ssh2#1511; Node 25 and later ship the cleanup-hook
 * registry that the 24.x backport lacked).
 */
export function objectWrapAborts(version: string): boolean {
  const [major, minor] = version.replace(/^v/u, '').split('.').map(Number);
  return major === 24 && (minor ?? 0) >= 19;
}

/**
 * Whether the binding at `bindingPath` may load in Node `version`: always on releases without the ObjectWrap
 * defect; otherwise only with the marker that scripts/build-ssh2-binding.mjs writes after the binding, built with the
 * patched header, survived its GC probe (`sshgate-safe node=<version>`). A binding built by ssh2's own install
 * script under an affected Node aborts the process at the first collection of a cipher object.
 */
export function nativeCryptoAllowed(version: string, marker: string | null): boolean {
  if (!objectWrapAborts(version)) return true;
  return marker !== null && marker.startsWith('sshgate-safe ');
}

/** Where ssh2 looks for its binding, or null when ssh2 cannot be resolved. */
export function ssh2BindingPath(): string | null {
  try {
    const require = createRequire(import.meta.url);
    return join(dirname(require.resolve('ssh2/package.json')), 'lib', 'protocol', 'crypto', 'build', 'Release', 'sshcrypto.node');
  } catch {
    return null;
  }
}

/**
 * Installs the guard: when ssh2's binding exists and {@link nativeCryptoAllowed} says no, loading it throws, which
 * ssh2 treats as "no binding" (it then encrypts in JavaScript, slower but safe). Call before ssh2 is imported.
 * `bindingPath` and `version` default to ssh2's binding and this Node (tests pass others).
 */
export function guardNativeCrypto(bindingPath: string | null = ssh2BindingPath(), version: string = process.version): void {
  if (bindingPath === null || !existsSync(bindingPath)) return;
  const markerPath = `${bindingPath}.sshgate`;
  const marker = existsSync(markerPath) ? readFileSync(markerPath, 'utf8') : null;
  if (nativeCryptoAllowed(version, marker)) return;
  nativeCryptoBlocked = `ssh2's native crypto binding was not built with sshgate's fix for the Node ${version} ObjectWrap defect (it would abort the process during garbage collection)`;
  const require = createRequire(import.meta.url);
  const blocked = bindingPath;
  // require.extensions is Node's documented (if deprecated) hook for loading by file type; one path is refused.
  // eslint-disable-next-line @typescript-eslint/no-deprecated -- the one hook that sees an addon's path before dlopen().
  const extensions = require.extensions as Record<string, (module: unknown, filename: string) => void>;
  const loadNative = extensions['.node'];
  if (loadNative === undefined) return;
  extensions['.node'] = (module, filename) => {
    if (filename === blocked) throw new Error(nativeCryptoBlocked ?? 'blocked');
    loadNative(module, filename);
  };
}

/**
 * Whether ssh2 loaded its native crypto binding (AES-GCM and ChaCha20-Poly1305 in C++ over OpenSSL) in this Node.
 * Without it ssh2 encrypts in JavaScript: measured 0.64x OpenSSH sftp on a 256 MiB transfer, against 0.82x with it
 * (bench/transfer.mjs, before the GC flag of src/cli/relaunch.ts). False too when {@link guardNativeCrypto} refused it.
 * Loads ssh2's crypto module if nothing has yet: call it after {@link guardNativeCrypto}.
 */
export function nativeCryptoAvailable(): boolean {
  try {
    // ssh2 exports the flag from a module its package does not re-export; require() reaches it (CommonJS).
    const crypto = createRequire(import.meta.url)('ssh2/lib/protocol/crypto.js') as { bindingAvailable?: unknown };
    return crypto.bindingAvailable === true;
  } catch {
    return false;
  }
}
