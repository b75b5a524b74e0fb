// ssh2's native crypto binding: built so that garbage collection cannot abort the process, and never loaded when
// that is not known (Node 24.19+ ObjectWrap defect, nodejs/node#65446).
import { spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { guardNativeCrypto, nativeCryptoAllowed, objectWrapAborts, ssh2BindingPath } from '../../../src/ssh/native-crypto.js';

describe('objectWrapAborts', () => {
  it('names exactly the 24.x releases from 24.19 on', () => {
    expect(['v24.18.1', 'v24.19.0', 'v24.21.0', 'v22.22.0', 'v25.0.0', 'v26.1.0'].filter(objectWrapAborts)).toEqual(['v24.19.0', 'v24.21.0']);
  });
});

describe('nativeCryptoAllowed', () => {
  it('an affected Node needs the marker of a binding that passed the GC probe', () => {
    expect(nativeCryptoAllowed('v24.21.0', null)).toBe(false);
    expect(nativeCryptoAllowed('v24.21.0', 'something else\n')).toBe(false);
    expect(nativeCryptoAllowed('v24.21.0', 'sshgate-safe node=v24.21.0\n')).toBe(true);
    expect(nativeCryptoAllowed('v22.22.0', null)).toBe(true);
  });
});

describe('guardNativeCrypto', () => {
  it('a binding without the marker on an affected Node is refused before dlopen, with the reason', () => {
    const dir = mkdtempSync(join(tmpdir(), 'sshgate-binding-'));
    const fake = join(dir, 'sshcrypto.node');
    writeFileSync(fake, 'not an ELF file');
    guardNativeCrypto(fake, 'v24.19.0');
    expect(() => {
      createRequire(import.meta.url)(fake);
    }).toThrow(/ObjectWrap defect/u);
  });

  it('with the marker the guard steps aside (this fake file then fails in dlopen itself)', () => {
    const dir = mkdtempSync(join(tmpdir(), 'sshgate-binding-'));
    const fake = join(dir, 'sshcrypto.node');
    writeFileSync(fake, 'not an ELF file');
    writeFileSync(`${fake}.sshgate`, 'sshgate-safe node=v24.19.0\n');
    guardNativeCrypto(fake, 'v24.19.0');
    expect(() => {
      createRequire(import.meta.url)(fake);
    }).toThrow(/invalid ELF header|file too short/u);
  });
});

describe('the binding npm ci built (scripts/build-ssh2-binding.mjs)', () => {
  it('survives the garbage collection of 20000 cipher objects (the Node 24.19 ObjectWrap abort)', () => {
    const binding = ssh2BindingPath();
    expect(binding).not.toBeNull();
    const probe = join(import.meta.dirname, '..', '..', '..', 'scripts', 'ssh2-gc-probe.cjs');
    const run = spawnSync(process.execPath, ['--expose-gc', probe, binding ?? ''], { encoding: 'utf8' });
    expect(run.stderr).not.toMatch(/Assertion failed/u);
    expect(run.stdout).toBe('survived');
  });
});
