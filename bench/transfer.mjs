// Transfer throughput (issue 4): a 256 MiB download and upload through sshgate's tools (the built server over
// stdio, like run.mjs), next to OpenSSH `sftp -b` and `scp` of the same file against the same sshd in the same
// run. Each figure is the median of BENCH_TRANSFER_RUNS runs (default 3), the tools interleaved so that a busy
// machine slows them alike. Run alone with `node bench/transfer.mjs` (after `npm run build`).
import { execFile, spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdir, open, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { promisify } from 'node:util';
import { Client } from '@modelcontextprotocol/client';
import { StdioClientTransport } from '@modelcontextprotocol/client/stdio';
import { stringify } from 'yaml';

const run = promisify(execFile);
const root = join(import.meta.dirname, '..');
const MIB = 1024 * 1024;
const log = (m) => process.stderr.write(`bench: ${m}\n`);
const round = (x) => Math.round(x * 10) / 10;
const ratio = (a, b) => Math.round((a / b) * 100) / 100;
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

/** Writes `mib` MiB of deterministic, non-repeating bytes (xorshift block, each MiB stamped with its index); returns the sha256. */
async function writeTestFile(path, mib) {
  const block = Buffer.alloc(MIB);
  let x = 0x9e3779b9;
  for (let i = 0; i < MIB; i += 4) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    block.writeUInt32LE(x >>> 0, i);
  }
  const hash = createHash('sha256');
  const fh = await open(path, 'w');
  try {
    for (let i = 0; i < mib; i += 1) {
      block.writeUInt32LE(i, 0);
      hash.update(block);
      await fh.write(block);
    }
  } finally {
    await fh.close();
  }
  return hash.digest('hex');
}

async function sha256File(path) {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(path, { highWaterMark: 4 * MIB })) hash.update(chunk);
  return hash.digest('hex');
}

async function timed(fn) {
  const started = performance.now();
  await fn();
  return performance.now() - started;
}

function openSsh(sshd) {
  const options = ['-o', 'BatchMode=yes', '-o', `UserKnownHostsFile=${sshd.knownHostsPath}`, '-o', 'StrictHostKeyChecking=yes', '-i', sshd.clientKeyPath, '-P', String(sshd.port)];
  const target = `${sshd.user}@${sshd.address}`;
  const sftp = (command) =>
    new Promise((resolve, reject) => {
      const p = spawn('sftp', [...options, '-b', '-', target], { stdio: ['pipe', 'ignore', 'pipe'] });
      let err = '';
      p.stderr.on('data', (d) => (err += d));
      p.on('exit', (code) => (code === 0 ? resolve() : reject(new Error(`sftp exit ${code}: ${err}`))));
      p.stdin.end(`${command}\n`);
    });
  return {
    sftpGet: (remote, local) => sftp(`get ${remote} ${local}`),
    sftpPut: (local, remote) => sftp(`put ${local} ${remote}`),
    scpGet: (remote, local) => run('scp', [...options, `${target}:${remote}`, local]),
    scpPut: (local, remote) => run('scp', [...options, local, `${target}:${remote}`]),
  };
}

/**
 * Measures 256 MiB (BENCH_TRANSFER_MIB) downloads and uploads through sshgate and OpenSSH against `sshd`, with
 * scratch files under `dir`. `mainJs` is the built server (default dist/main.js). Returns JSON figures.
 */
export async function benchTransfers(sshd, dir, { mainJs = join(root, 'dist', 'main.js'), mib = Number(process.env.BENCH_TRANSFER_MIB ?? 256), runs = Number(process.env.BENCH_TRANSFER_RUNS ?? 3) } = {}) {
  const work = join(dir, 'transfer');
  await mkdir(work, { recursive: true });
  const source = join(work, 'source.bin');
  const expected = await writeTestFile(source, mib);
  const configPath = join(work, 'config.yaml');
  await writeFile(
    configPath,
    stringify({
      tier: 'write',
      known_hosts: { file: sshd.knownHostsPath },
      audit: { path: join(work, 'audit.jsonl') },
      local_paths: [work],
      hosts: { bench: { hostname: sshd.address, port: sshd.port, user: sshd.user, identity_file: sshd.clientKeyPath } },
    }),
  );
  const transport = new StdioClientTransport({ command: process.execPath, args: [mainJs, 'serve', '--config', configPath], stderr: 'ignore' });
  const client = new Client({ name: 'bench-transfer', version: '1' });
  await client.connect(transport);
  const call = async (name, args) => {
    const result = await client.callTool({ name, arguments: args }, { timeout: 600_000 });
    if (result.isError) throw new Error(`${name}: ${JSON.stringify(result.content)}`);
    return result.structuredContent;
  };
  const ssh = openSsh(sshd);
  const figures = { sshgate: { download: [], upload: [] }, sftp: { download: [], upload: [] }, scp: { download: [], upload: [] } };
  const rate = (ms) => (mib * 1000) / ms;
  try {
    // Warm-up: connection, SFTP session and page cache.
    await writeFile(join(work, 'warm.txt'), 'warm\n');
    await call('ssh_upload_file', { host: 'bench', local_path: join(work, 'warm.txt'), remote_path: join(work, 'warm-remote.txt'), overwrite: true });
    await sha256File(source);
    for (let i = 0; i < runs; i += 1) {
      const down = join(work, 'down.bin');
      const up = join(work, 'up.bin');
      figures.sshgate.download.push(rate(await timed(() => call('ssh_download_file', { host: 'bench', remote_path: source, local_path: down, overwrite: true }))));
      if ((await sha256File(down)) !== expected) throw new Error('sshgate download: sha256 differs');
      figures.sftp.download.push(rate(await timed(() => ssh.sftpGet(source, join(work, 'down-sftp.bin')))));
      figures.scp.download.push(rate(await timed(() => ssh.scpGet(source, join(work, 'down-scp.bin')))));
      figures.sshgate.upload.push(rate(await timed(() => call('ssh_upload_file', { host: 'bench', local_path: source, remote_path: up, overwrite: true }))));
      if ((await sha256File(up)) !== expected) throw new Error('sshgate upload: sha256 differs');
      figures.sftp.upload.push(rate(await timed(() => ssh.sftpPut(source, join(work, 'up-sftp.bin')))));
      figures.scp.upload.push(rate(await timed(() => ssh.scpPut(source, join(work, 'up-scp.bin')))));
      log(`transfer run ${i + 1}/${runs} done`);
    }
  } finally {
    await client.close();
    await rm(work, { recursive: true, force: true });
  }
  const summary = (xs) => ({ median: round(median(xs)), runs: xs.map(round) });
  const med = (tool, dir2) => median(figures[tool][dir2]);
  return {
    size_mib: mib,
    runs,
    mib_per_s: {
      sshgate: { download: summary(figures.sshgate.download), upload: summary(figures.sshgate.upload) },
      openssh_sftp: { download: summary(figures.sftp.download), upload: summary(figures.sftp.upload) },
      openssh_scp: { download: summary(figures.scp.download), upload: summary(figures.scp.upload) },
    },
    ratios: {
      download_vs_sftp: ratio(med('sshgate', 'download'), med('sftp', 'download')),
      upload_vs_sftp: ratio(med('sshgate', 'upload'), med('sftp', 'upload')),
      download_vs_scp: ratio(med('sshgate', 'download'), med('scp', 'download')),
      upload_vs_scp: ratio(med('sshgate', 'upload'), med('scp', 'upload')),
    },
    targets: {
      download_at_least_sftp: med('sshgate', 'download') >= med('sftp', 'download'),
      upload_at_least_sftp: med('sshgate', 'upload') >= med('sftp', 'upload'),
    },
  };
}

// Standalone: node bench/transfer.mjs (SSHGATE_DIST points at another build of sshgate, default ./dist).
if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const dist = process.env.SSHGATE_DIST ?? join(root, 'dist');
  const { startSshd } = await import(pathToFileURL(join(dist, 'testing', 'sshd.js')).href);
  const { mkdtemp } = await import('node:fs/promises');
  const dir = await mkdtemp(join(tmpdir(), 'sshgate-bench-transfer-'));
  const sshd = await startSshd({ address: process.env.BENCH_ADDRESS ?? '127.0.0.1', dir: join(dir, 'sshd'), ...(process.env.BENCH_USER ? { user: process.env.BENCH_USER } : {}) });
  try {
    const out = await benchTransfers(sshd, dir, { mainJs: join(dist, 'main.js') });
    process.stdout.write(`${JSON.stringify(out, null, 2)}\n`);
  } finally {
    await sshd.stop();
    await rm(dir, { recursive: true, force: true });
  }
}
