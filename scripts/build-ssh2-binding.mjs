// Builds ssh2's optional native crypto binding for the Node that runs this script (the repo's pinned Node 24).
//
// Why: `npm ci` runs ssh2's own install script under the Node that runs npm (the system Node 20 on these
// machines), so the binding it builds cannot load in Node 24 ("Module did not self-register") and ssh2 silently
// falls back to JavaScript crypto, which measured 0.64x OpenSSH sftp on a 256 MiB transfer against 0.82x with the
// binding (bench/transfer.mjs). Run from the `prepare` script, whose `node` is node@24 from node_modules/.bin.
// The headers come from the Node package itself (node-<os>-<arch>/include/node), so nothing is downloaded.
// A failure is a warning, not an error: ssh2 still works without the binding, only slower.
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync, realpathSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';

const require = createRequire(import.meta.url);
const warn = (m) => process.stderr.write(`build-ssh2-binding: ${m}\n`);

/** True when ssh2's binding loads in a fresh Node process (a failed dlopen can't be retried in this one). */
function bindingLoads() {
  const probe = spawnSync(process.execPath, ['-e', "process.exit(require('ssh2/lib/protocol/crypto.js').bindingAvailable ? 0 : 1)"], {
    cwd: import.meta.dirname,
    stdio: 'ignore',
  });
  return probe.status === 0;
}

/** A directory holding `include/node/node_version.h` of exactly this Node's version, or null. */
function findNodeDir() {
  const exec = realpathSync(process.execPath);
  const candidates = [
    dirname(dirname(exec)),
    join(dirname(require.resolve('node/package.json')), 'node_modules', `node-${process.platform}-${process.arch}`),
  ];
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

function main() {
  if (bindingLoads()) {
    warn(`ssh2's native crypto binding already loads in Node ${process.version}`);
    return;
  }
  const nodeDir = findNodeDir();
  const nodeGyp = findNodeGyp();
  if (nodeDir === null || nodeGyp === null) {
    warn(`cannot build ssh2's native crypto binding (${nodeDir === null ? `no headers of Node ${process.version}` : 'node-gyp not found'}); ssh2 uses JavaScript crypto, transfers are slower`);
    return;
  }
  const env = { ...process.env };
  // A user-level `nodedir` (an npmrc pointing at the system Node's headers) would win over the flag below.
  delete env['npm_config_nodedir'];
  delete env['NPM_CONFIG_NODEDIR'];
  const result = spawnSync(
    process.execPath,
    [nodeGyp, 'rebuild', `--nodedir=${nodeDir}`, `--target=${process.version}`, `--real_openssl_major=${/^\d+/u.exec(process.versions.openssl)?.[0] ?? '3'}`],
    { cwd: join(dirname(require.resolve('ssh2/package.json')), 'lib', 'protocol', 'crypto'), env, encoding: 'utf8' },
  );
  if (result.status !== 0 || !bindingLoads()) {
    warn(`building ssh2's native crypto binding failed; ssh2 uses JavaScript crypto, transfers are slower\n${(result.stderr ?? '').slice(-2000)}`);
    return;
  }
  warn(`built ssh2's native crypto binding for Node ${process.version}`);
}

main();
