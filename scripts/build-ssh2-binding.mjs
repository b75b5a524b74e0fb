// Builds ssh2's optional native crypto binding for the Node that runs this script (the repo's pinned Node 24), in
// a form that cannot abort the process, and proves it before leaving it in place.
//
// Why build it here: ssh2's own install script runs under the Node that runs npm (the system Node 20 on these
// machines), so the binding it builds cannot load in Node 24 ("Module did not self-register") and ssh2 silently
// falls back to JavaScript crypto: 0.64x OpenSSH sftp on a 256 MiB transfer, against 0.82x with the binding
// (bench/transfer.mjs). package.json's `allowScripts` therefore denies that script (it would also try to download
// headers where none are installed) and this one, run from the `prepare` script, whose `node` is node@24 from
// node_modules/.bin, builds the binding instead.
//
// Why patch a header: Node 24.19 made the header-only `node::ObjectWrap` register an environment cleanup hook in
// its constructor and remove it in its destructor (nodejs/node#63642, mscdex/ssh2#1511, nodejs/node#65446). The
// destructor runs in a V8 weak callback with no context entered, so `RemoveEnvironmentCleanupHook` finds no
// Environment and aborts the process ("Assertion failed: (env) != nullptr") the first time the GC collects one of
// ssh2's cipher objects. The crash follows the headers the addon is compiled against, so the binding is compiled
// with Node's own `node_object_wrap.h` minus those two calls (what it was up to 24.18), force-included ahead of
// the original. The ABI does not change: the hooks only deleted wrapped objects at environment teardown.
//
// The result must pass a probe in a fresh process (scripts/ssh2-gc-probe.cjs: load, then collect 20000 cipher
// objects) and gets a marker file that sshgate checks at start-up (src/cli/native-crypto-guard.ts); a binding
// that fails the probe is removed, so ssh2 uses JavaScript crypto. Headers come from the Node package itself
// (node-<os>-<arch>/include/node): nothing is downloaded. A failure is a warning, not an error.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, realpathSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';

const require = createRequire(import.meta.url);
const warn = (m) => process.stderr.write(`build-ssh2-binding: ${m}\n`);

const ssh2Dir = dirname(require.resolve('ssh2/package.json'));
const cryptoDir = join(ssh2Dir, 'lib', 'protocol', 'crypto');
const bindingPath = join(cryptoDir, 'build', 'Release', 'sshcrypto.node');
/** Read by src/cli/native-crypto-guard.ts: keep the name and the first line's format in step with it. */
const markerPath = `${bindingPath}.sshgate`;
const markerText = `sshgate-safe node=${process.version}\n`;

/** Loads the binding in a fresh process and makes the GC collect its cipher objects; true when it survived. */
function probe() {
  const run = spawnSync(process.execPath, ['--expose-gc', join(import.meta.dirname, 'ssh2-gc-probe.cjs'), bindingPath], { encoding: 'utf8' });
  return run.status === 0 && run.stdout === 'survived';
}

/** A directory holding `include/node/node_version.h` of exactly this Node's version, or null. */
function findNodeDir() {
  const exec = realpathSync(process.execPath);
  const candidates = [dirname(dirname(exec))];
  try {
    candidates.push(join(dirname(require.resolve('node/package.json')), 'node_modules', `node-${process.platform}-${process.arch}`));
  } catch {
    // Not installed through the `node` package: the first candidate only.
  }
  const [major, minor, patch] = process.versions.node.split('.');
  for (const dir of candidates) {
    const header = join(dir, 'include', 'node', 'node_version.h');
    if (!existsSync(header)) continue;
    const text = readFileSync(header, 'utf8');
    const version = (name) => new RegExp(`#define NODE_${name}_VERSION (\\d+)`, 'u').exec(text)?.[1];
    if (version('MAJOR') === major && version('MINOR') === minor && version('PATCH') === patch) return dir;
  }
  return null;
}

/** npm's bundled node-gyp (npm sets npm_config_node_gyp for lifecycle scripts; npm_execpath otherwise). */
function findNodeGyp() {
  const fromEnv = process.env['npm_config_node_gyp'];
  if (fromEnv !== undefined && existsSync(fromEnv)) return fromEnv;
  const npm = process.env['npm_execpath'];
  if (npm === undefined) return null;
  const gyp = join(dirname(dirname(npm)), 'node_modules', 'node-gyp', 'bin', 'node-gyp.js');
  return existsSync(gyp) ? gyp : null;
}

/** Writes `node_object_wrap.h` without the cleanup-hook calls into `dir`; returns its path. */
function patchedObjectWrap(nodeDir, dir) {
  const original = readFileSync(join(nodeDir, 'include', 'node', 'node_object_wrap.h'), 'utf8');
  const patched = original.replace(/^\s*AddCleanupHook\(\);\s*$/mu, '').replace(/^\s*RemoveCleanupHook\(\);\s*$/mu, '');
  const path = join(dir, 'node_object_wrap.h');
  writeFileSync(path, `// Copied by sshgate's scripts/build-ssh2-binding.mjs from ${nodeDir}, cleanup-hook calls removed.\n${patched}`);
  return path;
}

function removeBinding(reason) {
  rmSync(bindingPath, { force: true });
  rmSync(markerPath, { force: true });
  warn(`${reason}; removed it: ssh2 uses JavaScript crypto, transfers are slower`);
}

function main() {
  if (existsSync(markerPath) && readFileSync(markerPath, 'utf8') === markerText && probe()) {
    warn(`ssh2's native crypto binding is already built for Node ${process.version}`);
    return;
  }
  rmSync(markerPath, { force: true });
  const nodeDir = findNodeDir();
  const nodeGyp = findNodeGyp();
  if (nodeDir === null || nodeGyp === null) {
    if (existsSync(bindingPath)) removeBinding(`cannot rebuild ssh2's native crypto binding (${nodeDir === null ? `no headers of Node ${process.version}` : 'node-gyp not found'}) and the one there is unproven`);
    else warn(`cannot build ssh2's native crypto binding (${nodeDir === null ? `no headers of Node ${process.version}` : 'node-gyp not found'}); ssh2 uses JavaScript crypto, transfers are slower`);
    return;
  }
  const work = mkdtempSync(join(tmpdir(), 'sshgate-objectwrap-'));
  try {
    const env = { ...process.env };
    // A user-level `nodedir` (an npmrc pointing at the system Node's headers) would win over the flag below.
    delete env['npm_config_nodedir'];
    delete env['NPM_CONFIG_NODEDIR'];
    // Force-included first: its include guard then turns the original header (included by nan.h) into a no-op.
    env['CXXFLAGS'] = `${env['CXXFLAGS'] ?? ''} -include ${patchedObjectWrap(nodeDir, work)}`.trim();
    const result = spawnSync(
      process.execPath,
      [nodeGyp, 'rebuild', `--nodedir=${nodeDir}`, `--target=${process.version}`, `--real_openssl_major=${/^\d+/u.exec(process.versions.openssl)?.[0] ?? '3'}`],
      { cwd: cryptoDir, env, encoding: 'utf8' },
    );
    if (result.status !== 0) {
      if (existsSync(bindingPath)) removeBinding(`building ssh2's native crypto binding failed\n${(result.stderr ?? '').slice(-2000)}`);
      else warn(`building ssh2's native crypto binding failed; ssh2 uses JavaScript crypto, transfers are slower\n${(result.stderr ?? '').slice(-2000)}`);
      return;
    }
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
  if (!probe()) {
    removeBinding(`the rebuilt native crypto binding did not survive loading and garbage collection in Node ${process.version}`);
    return;
  }
  writeFileSync(markerPath, markerText);
  warn(`built ssh2's native crypto binding for Node ${process.version} (GC-safe ObjectWrap)`);
}

main();
