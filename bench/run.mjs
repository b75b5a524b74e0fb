// Benchmark harness (npm run bench): drives the built server over stdio with a real MCP client against a
// loopback sshd, and measures the same operations with OpenSSH (ControlMaster) and a bare ssh2 connection in
// the same run. Prints JSON; the figures that matter are the ratios.
import { execFile, spawn } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { Client } from '@modelcontextprotocol/client';
import { StdioClientTransport } from '@modelcontextprotocol/client/stdio';
import ssh2 from 'ssh2';
import { stringify } from 'yaml';
import { startSshd } from '../dist/testing/sshd.js';

const run = promisify(execFile);
const root = join(import.meta.dirname, '..');
const SEQ = Number(process.env.BENCH_SEQ ?? 200);
const CONC = 64;
const BIG = 50 * 1024 * 1024;

const pct = (xs, p) => {
  const s = [...xs].sort((a, b) => a - b);
  return Math.round(s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))] * 100) / 100;
};
const stats = (xs) => ({ p50: pct(xs, 50), p95: pct(xs, 95), p99: pct(xs, 99) });
const ratio = (a, b) => Math.round((a / b) * 100) / 100;
const log = (m) => process.stderr.write(`bench: ${m}\n`);

async function peakRss(pid) {
  const status = await readFile(`/proc/${pid}/status`, 'utf8').catch(() => '');
  const m = /VmHWM:\s+(\d+) kB/u.exec(status);
  return m ? Math.round(Number(m[1]) / 1024) : null;
}

async function benchSshgate(sshd, dir) {
  const configPath = join(dir, 'config.yaml');
  await writeFile(
    configPath,
    stringify({
      tier: 'exec',
      known_hosts: { file: sshd.knownHostsPath },
      audit: { path: join(dir, 'audit.jsonl') },
      hosts: { bench: { hostname: sshd.address, port: sshd.port, user: sshd.user, identity_file: sshd.clientKeyPath } },
    }),
  );
  const t0 = performance.now();
  const transport = new StdioClientTransport({ command: process.execPath, args: [join(root, 'dist', 'main.js'), 'serve', '--config', configPath], stderr: 'ignore' });
  const client = new Client({ name: 'bench', version: '1' });
  await client.connect(transport);
  await client.listTools();
  const startupMs = Math.round(performance.now() - t0);
  const call = (command) => client.callTool({ name: 'ssh_exec', arguments: { host: 'bench', command } }, { timeout: 600_000 });

  await call('echo warm');
  const lat = [];
  for (let i = 0; i < SEQ; i += 1) {
    const s = performance.now();
    const r = await call('echo hi');
    lat.push(performance.now() - s);
    if (r.isError) throw new Error(JSON.stringify(r.content));
  }
  // Persistent shell round trip (ssh_send_shell on an open posix session).
  const opened = await client.callTool({ name: 'ssh_open_shell', arguments: { host: 'bench' } });
  const sessionId = opened.structuredContent?.session_id;
  const shellLat = [];
  for (let i = 0; i < 100 && sessionId; i += 1) {
    const s = performance.now();
    await client.callTool({ name: 'ssh_send_shell', arguments: { host: 'bench', session_id: sessionId, command: 'echo hi' } });
    shellLat.push(performance.now() - s);
  }
  if (sessionId) await client.callTool({ name: 'ssh_close_shell', arguments: { host: 'bench', session_id: sessionId } });

  const c0 = performance.now();
  const conc = await Promise.all(Array.from({ length: CONC }, () => call('echo hi').catch((e) => ({ isError: true, content: String(e) }))));
  const concMs = Math.round(performance.now() - c0);
  const concErrors = conc.filter((r) => r.isError).length;

  const b0 = performance.now();
  const big = await call(`head -c ${BIG} /dev/zero | tr '\\0' x`);
  const bigMs = Math.round(performance.now() - b0);
  const rss = await peakRss(transport.pid);
  const returned = Buffer.byteLength(JSON.stringify(big));
  await client.close();
  return {
    startup_to_tools_list_ms: startupMs,
    exec_latency_ms: stats(lat),
    shell_round_trip_ms: shellLat.length > 0 ? stats(shellLat) : null,
    concurrent_64: { wall_ms: concMs, errors: concErrors },
    output_50mb: { wall_ms: bigMs, server_peak_rss_mb: rss, bytes_returned: returned, truncated: big.structuredContent?.truncated ?? null },
  };
}

/** Broadcast to N hosts (one sshd each), and exec latency direct vs. through one jump host, through sshgate. */
async function benchFleet(sshd, dir, count) {
  const fleet = [];
  for (let i = 0; i < count; i += 1) fleet.push(await startSshd({ address: `127.0.0.${101 + i}`, dir: join(dir, `fleet-${i}`), ...(benchUser ? { user: benchUser } : {}) }));
  try {
    const knownHosts = join(dir, 'fleet_known_hosts');
    await writeFile(knownHosts, [sshd.knownHostsLine, ...fleet.map((f) => f.knownHostsLine)].join('\n') + '\n');
    const hosts = { direct: { hostname: sshd.address, port: sshd.port, user: sshd.user, identity_file: sshd.clientKeyPath },
      jumped: { hostname: sshd.address, port: sshd.port, user: sshd.user, identity_file: sshd.clientKeyPath, jump: 'direct' } };
    fleet.forEach((f, i) => { hosts[`fleet${i}`] = { hostname: f.address, port: f.port, user: f.user, identity_file: f.clientKeyPath, labels: ['fleet'] }; });
    const configPath = join(dir, 'fleet.yaml');
    await writeFile(configPath, stringify({ tier: 'exec', known_hosts: { file: knownHosts }, audit: { path: join(dir, 'fleet-audit.jsonl') }, hosts }));
    const transport = new StdioClientTransport({ command: process.execPath, args: [join(root, 'dist', 'main.js'), 'serve', '--config', configPath], stderr: 'ignore' });
    const client = new Client({ name: 'bench-fleet', version: '1' });
    await client.connect(transport);
    const call = (name, args) => client.callTool({ name, arguments: args }, { timeout: 600_000 });
    // Warm every connection, then time one call per host: the slowest single call is the yardstick.
    await call('ssh_broadcast', { command: 'true', labels: ['fleet'], concurrency: count });
    const singles = [];
    for (let i = 0; i < count; i += 1) {
      const t = performance.now();
      await call('ssh_exec', { host: `fleet${i}`, command: 'echo hi' });
      singles.push(performance.now() - t);
    }
    const b0 = performance.now();
    const b = await call('ssh_broadcast', { command: 'echo hi', labels: ['fleet'], concurrency: count });
    const broadcastMs = performance.now() - b0;
    const lat = async (host) => {
      await call('ssh_exec', { host, command: 'echo warm' });
      const xs = [];
      for (let i = 0; i < 100; i += 1) {
        const t = performance.now();
        await call('ssh_exec', { host, command: 'echo hi' });
        xs.push(performance.now() - t);
      }
      return stats(xs);
    };
    const direct = await lat('direct');
    const jumped = await lat('jumped');
    await client.close();
    const slowest = Math.max(...singles);
    return {
      broadcast: { hosts: count, wall_ms: Math.round(broadcastMs), slowest_single_call_ms: Math.round(slowest * 100) / 100, ratio_to_slowest: ratio(broadcastMs, slowest), ok: b.structuredContent?.ok_count ?? null },
      jump: { direct_p50_ms: direct.p50, via_one_jump_p50_ms: jumped.p50, direct, via_one_jump: jumped, ratio_p50: ratio(jumped.p50, direct.p50) },
    };
  } finally {
    for (const f of fleet) await f.stop();
  }
}

async function benchOpenSsh(sshd, dir) {
  const sock = join(dir, 'cm.sock');
  const base = ['-o', 'BatchMode=yes', '-o', `UserKnownHostsFile=${sshd.knownHostsPath}`, '-o', 'StrictHostKeyChecking=yes', '-i', sshd.clientKeyPath, '-p', String(sshd.port)];
  const target = `${sshd.user}@${sshd.address}`;
  await run('ssh', [...base, '-o', 'ControlMaster=yes', '-o', `ControlPath=${sock}`, '-o', 'ControlPersist=60', '-fN', target]);
  const mux = [...base, '-o', `ControlPath=${sock}`, target];
  const lat = [];
  for (let i = 0; i < SEQ; i += 1) {
    const s = performance.now();
    await run('ssh', [...mux, 'echo hi']);
    lat.push(performance.now() - s);
  }
  const c0 = performance.now();
  const conc = await Promise.all(Array.from({ length: CONC }, () => run('ssh', [...mux, 'echo hi']).then(() => 0, () => 1)));
  const concMs = Math.round(performance.now() - c0);
  const b0 = performance.now();
  await new Promise((resolve, reject) => {
    const p = spawn('ssh', [...mux, `head -c ${BIG} /dev/zero | tr '\\0' x`], { stdio: ['ignore', 'ignore', 'ignore'] });
    p.on('exit', (code) => (code === 0 ? resolve() : reject(new Error(`ssh exit ${code}`))));
  });
  const bigMs = Math.round(performance.now() - b0);
  await run('ssh', [...mux, '-O', 'exit']).catch(() => undefined);
  return { exec_latency_ms: stats(lat), concurrent_64: { wall_ms: concMs, errors: conc.reduce((a, b) => a + b, 0) }, output_50mb: { wall_ms: bigMs } };
}

async function benchBareSsh2(sshd) {
  const key = await readFile(sshd.clientKeyPath);
  const client = new ssh2.Client();
  await new Promise((resolve, reject) => {
    client.on('ready', resolve).on('error', reject);
    client.connect({ host: sshd.address, port: sshd.port, username: sshd.user, privateKey: key, hostVerifier: () => true });
  });
  client._sock.setNoDelay(true);
  const exec = () =>
    new Promise((resolve, reject) => {
      client.exec('echo hi', (err, ch) => {
        if (err) return reject(err);
        ch.on('data', () => undefined).on('close', resolve);
        ch.stderr.on('data', () => undefined);
        ch.end();
      });
    });
  await exec();
  const lat = [];
  for (let i = 0; i < SEQ; i += 1) {
    const s = performance.now();
    await exec();
    lat.push(performance.now() - s);
  }
  client.end();
  return { exec_latency_ms: stats(lat) };
}

const dir = await mkdtemp(join(tmpdir(), 'sshgate-bench-'));
// BENCH_USER: log in as this user (root only). The shell start-up files of the login user run on every exec
// (Debian's bash sources ~/.bashrc for sshd sessions); a heavy one (pyenv init: ~85 ms here) would dominate every
// figure, for sshgate and OpenSSH alike. A plain /bin/sh user measures the transport, not the dotfiles.
const benchUser = process.env.BENCH_USER;
const sshd = await startSshd({ address: '127.0.0.1', dir: join(dir, 'sshd'), ...(benchUser ? { user: benchUser } : {}) });
try {
  log(`sshd on ${sshd.address}:${sshd.port}; ${SEQ} sequential calls each`);
  const bare = await benchBareSsh2(sshd);
  log('bare ssh2 done');
  const openssh = await benchOpenSsh(sshd, dir);
  log('OpenSSH done');
  const sshgate = await benchSshgate(sshd, dir);
  log('sshgate done');
  const fleet = await benchFleet(sshd, dir, Number(process.env.BENCH_FLEET ?? 20));
  log('fleet done');
  // 256 MiB download and upload through the tools, next to OpenSSH sftp and scp (bench/transfer.mjs).
  const transfers = await (await import('./transfer.mjs')).benchTransfers(sshd, dir);
  log('transfers done');
  const out = {
    machine: { node: process.version, cpus: (await import('node:os')).cpus().length, login_user: sshd.user, sequential_calls: SEQ },
    sshgate,
    openssh_controlmaster: openssh,
    bare_ssh2_nodelay: bare,
    fleet,
    transfers,
    ratios: {
      exec_p50_vs_bare_ssh2: ratio(sshgate.exec_latency_ms.p50, bare.exec_latency_ms.p50),
      exec_p50_vs_openssh: ratio(sshgate.exec_latency_ms.p50, openssh.exec_latency_ms.p50),
      concurrent_64_wall_vs_openssh: ratio(sshgate.concurrent_64.wall_ms, openssh.concurrent_64.wall_ms),
      output_50mb_wall_vs_openssh: ratio(sshgate.output_50mb.wall_ms, openssh.output_50mb.wall_ms),
    },
    targets: {
      exec_p50_within_1_5x_bare_ssh2: sshgate.exec_latency_ms.p50 <= 1.5 * bare.exec_latency_ms.p50,
      zero_errors_at_64_concurrent: sshgate.concurrent_64.errors === 0,
      server_rss_under_150mb_during_50mb_output: sshgate.output_50mb.server_peak_rss_mb !== null && sshgate.output_50mb.server_peak_rss_mb < 150,
    },
  };
  process.stdout.write(`${JSON.stringify(out, null, 2)}\n`);
} finally {
  await sshd.stop();
  await rm(dir, { recursive: true, force: true });
}
