// `sshgate demo`: a throwaway sshd on loopback, sshgate over stdio, and a narrated session driven by a real MCP client.
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { styleText } from 'node:util';
import { Client, type CallToolResult } from '@modelcontextprotocol/client';
import { StdioClientTransport } from '@modelcontextprotocol/client/stdio';
import { stringify } from 'yaml';
import { verifyAuditFile } from '../audit/verify.js';
import { SshdNotFoundError, startSshd, type SshdInstance } from '../testing/sshd.js';

type Style = Parameters<typeof styleText>[0];

/** Writes narration to stdout (this command is not an MCP server: stdout is the terminal). */
class Narrator {
  private readonly color = process.stdout.isTTY && process.env['NO_COLOR'] === undefined;
  private step = 0;

  private paint(style: Style, text: string): string {
    return this.color ? styleText(style, text) : text;
  }

  line(text = ''): void {
    process.stdout.write(`${text}\n`);
  }

  title(text: string): void {
    this.line(this.paint(['bold', 'cyan'], text));
  }

  section(text: string): void {
    this.step += 1;
    this.line();
    this.line(this.paint('bold', `${this.step}. ${text}`));
  }

  call(tool: string, args: Record<string, unknown>): void {
    this.line(this.paint('dim', `   -> ${tool} ${JSON.stringify(args)}`));
  }

  result(text: string, isError: boolean): void {
    const body = text.split('\n').slice(0, 14);
    for (const l of body) this.line(`   ${isError ? this.paint('yellow', l) : l}`);
    if (text.split('\n').length > body.length) this.line(this.paint('dim', '   ...'));
  }

  note(text: string): void {
    this.line(this.paint('dim', `   ${text}`));
  }

  ok(text: string): void {
    this.line(`   ${this.paint('green', 'ok')} ${text}`);
  }

  bad(text: string): void {
    this.line(`   ${this.paint('red', 'FAILED')} ${text}`);
  }
}

function textOf(result: CallToolResult): string {
  return result.content.map((c) => (c.type === 'text' ? c.text : `[${c.type}]`)).join('\n');
}

/** Options of {@link runDemo}. */
export interface DemoOptions {
  keep: boolean;
}

/**
 * Runs the demo and returns the process exit code: 0 when every step behaved as expected, 1 when one did
 * not or sshd is missing. Every process and file it made is removed (unless `keep`).
 */
export async function runDemo(options: DemoOptions): Promise<number> {
  const say = new Narrator();
  const dir = await mkdtemp(join(tmpdir(), 'sshgate-demo-'));
  let sshd: SshdInstance | null = null;
  let client: Client | null = null;
  let failures = 0;
  try {
    say.title('sshgate demo: an AI assistant operating an SSH host through sshgate');
    say.note('A throwaway OpenSSH sshd on loopback plays the remote host; a real MCP client plays the assistant.');
    try {
      sshd = await startSshd({ address: '127.0.0.1', dir: join(dir, 'sshd') });
    } catch (err) {
      if (err instanceof SshdNotFoundError) {
        say.line();
        say.bad(err.message);
        return 1;
      }
      throw err;
    }
    const workDir = join(dir, 'srv');
    await mkdir(workDir);
    const configPath = join(dir, 'config.yaml');
    const auditPath = join(dir, 'audit.jsonl');
    await writeFile(
      configPath,
      stringify({
        tier: 'exec',
        known_hosts: { file: sshd.knownHostsPath },
        audit: { path: auditPath },
        hosts: {
          demo: { hostname: sshd.address, port: sshd.port, user: sshd.user, identity_file: sshd.clientKeyPath, labels: ['demo'], tier: 'exec' },
          'demo-readonly': { hostname: sshd.address, port: sshd.port, user: sshd.user, identity_file: sshd.clientKeyPath, labels: ['demo'], tier: 'read' },
        },
      }),
    );
    say.note(`sshd ${sshd.address}:${sshd.port} (pid ${sshd.pid}), host key pinned in ${sshd.knownHostsPath}`);
    say.note(`config ${configPath}`);

    const main = fileURLToPath(new URL('../main.js', import.meta.url));
    const transport = new StdioClientTransport({ command: process.execPath, args: [main, 'serve', '--config', configPath], stderr: 'ignore' });
    client = new Client({ name: 'sshgate-demo', version: '1.0.0' }, { versionNegotiation: { mode: { pin: '2026-07-28' } } });
    const started = performance.now();
    await client.connect(transport);
    const { tools } = await client.listTools();
    say.section('The assistant connects and lists the tools');
    say.note(`connected over stdio (protocol 2026-07-28) in ${Math.round(performance.now() - started)} ms; ${tools.length} tools: ${tools.map((t) => t.name).join(', ')}`);

    const c = client;
    const step = async (title: string, tool: string, args: Record<string, unknown>, expectError: string | null = null): Promise<CallToolResult> => {
      say.section(title);
      say.call(tool, args);
      const result = (await c.callTool({ name: tool, arguments: args }));
      const isError = result.isError === true;
      say.result(textOf(result), isError);
      const code = isError ? (result.structuredContent as { error?: { code?: string } } | undefined)?.error?.code : null;
      if (expectError === null && isError) {
        failures += 1;
        say.bad('this call was expected to succeed');
      } else if (expectError !== null && code !== expectError) {
        failures += 1;
        say.bad(`expected a ${expectError} refusal`);
      }
      return result;
    };

    await step('Which hosts may I reach?', 'ssh_list_hosts', {});
    await step('Is the host up? (host key verified against known_hosts before authenticating)', 'ssh_ping_host', { host: 'demo' });
    await step('What is this machine?', 'ssh_get_host_info', { host: 'demo' });
    await step('Run a command (a non-zero exit would be data, not an error)', 'ssh_exec', { host: 'demo', command: 'uname -sr && id -un && df -h / | tail -n 1' });
    const file = join(workDir, 'app.conf');
    await step('Write a config file (atomically: temp file, size check, rename)', 'ssh_write_file', { host: 'demo', path: file, content: 'listen = 8080\nworkers = 4\n' });
    await step('Read it back (with its sha256, for a safe later edit)', 'ssh_read_file', { host: 'demo', path: file });
    await step('A call above the host\'s tier is refused before anything reaches the host', 'ssh_exec', { host: 'demo-readonly', command: 'rm -rf /tmp/x' }, 'POLICY_DENIED');

    await client.close();
    client = null;
    say.section('Every call left one hash-chained audit record');
    const verdict = await verifyAuditFile(auditPath);
    if (verdict.ok) say.ok(`audit log intact: ${verdict.records} records, chain verified (${auditPath})`);
    else {
      failures += 1;
      say.bad(`audit log broken at line ${verdict.firstBadLine}: ${verdict.reason}`);
    }
    say.line();
    if (failures === 0) say.title('Done. Add sshgate to your MCP client: see README.md ("Use it from your MCP client").');
    else say.bad(`${failures} step(s) did not behave as expected`);
    return failures === 0 ? 0 : 1;
  } finally {
    await client?.close().catch(() => undefined);
    await sshd?.stop().catch(() => undefined);
    if (options.keep) say.note(`kept ${dir}`);
    else await rm(dir, { recursive: true, force: true });
  }
}
