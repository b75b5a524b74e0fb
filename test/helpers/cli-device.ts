// A small Cisco-IOS-like network device on ssh2.Server, for the cli shell tests (OpenSSH cannot be one): a prompt
// that follows the mode (router>, router#, router(config)#, router(config-if)#), `enable`, ` --More-- ` paging until
// `terminal length 0`, `configure terminal`, `% Invalid input` errors, `hang` (returns its prompt only on Ctrl-C),
// `freeze` (never returns anything again) and `show fake-prompt` (prompt-looking lines inside its output, one of
// them sent at the end of a chunk, with a pause before the rest).
import type { AddressInfo } from 'node:net';
import { Server, utils, type Connection, type ServerChannel } from 'ssh2';

export interface CliDeviceOptions {
  /** Loopback address to listen on. */
  address: string;
  /** The name in the prompt. Default `router`. */
  hostname?: string;
}

export interface CliDevice {
  readonly address: string;
  readonly port: number;
  /** `[address]:port ssh-ed25519 AAAA...` for a known_hosts file. */
  readonly knownHostsLine: string;
  /** Every line the device received, in order, across sessions. */
  readonly received: string[];
  /** Shell sessions open right now. */
  openShells(): number;
  close(): Promise<void>;
}

type Mode = 'user' | 'enable' | 'config' | 'config-if';
type State = 'prompt' | 'more' | 'hang' | 'frozen' | 'busy';

const MORE = ' --More-- ';
const INVALID = "% Invalid input detected at '^' marker.";

/** One shell session of the device. */
class DeviceShell {
  private mode: Mode = 'user';
  private pageLength = 24;
  private input = '';
  private state: State = 'prompt';
  private pending: string[] = [];
  private lastWasCr = false;

  constructor(
    private readonly stream: ServerChannel,
    private hostname: string,
    private readonly received: string[],
  ) {}

  start(): void {
    this.write(`\r\nrouter emulator (sshgate tests)\r\nUnauthorized access is prohibited.\r\n\r\n${this.prompt()}`);
  }

  private prompt(): string {
    switch (this.mode) {
      case 'user':
        return `${this.hostname}>`;
      case 'enable':
        return `${this.hostname}#`;
      case 'config':
        return `${this.hostname}(config)#`;
      case 'config-if':
        return `${this.hostname}(config-if)#`;
    }
  }

  private write(text: string): void {
    if (this.stream.writable) this.stream.write(text);
  }

  onData(data: Buffer): void {
    for (const c of data.toString('utf8')) {
      const wasCr = this.lastWasCr;
      this.lastWasCr = c === '\r';
      switch (this.state) {
        case 'frozen':
        case 'busy':
          continue;
        case 'hang':
          if (c === '\x03') {
            this.state = 'prompt';
            this.write(`^C\r\n${this.prompt()}`);
          }
          continue;
        case 'more':
          this.onMoreKey(c);
          continue;
        case 'prompt':
          break;
      }
      if (c === '\n' && wasCr) continue;
      if (c === '\r' || c === '\n') {
        this.write('\r\n');
        const line = this.input;
        this.input = '';
        this.handle(line);
      } else if (c === '\x03') {
        this.input = '';
        this.write(`^C\r\n${this.prompt()}`);
      } else if (c === '\x7f' || c === '\b') {
        if (this.input.length > 0) {
          this.input = this.input.slice(0, -1);
          this.write('\b \b');
        }
      } else if (c >= ' ') {
        this.input += c;
        this.write(c);
      }
    }
  }

  private onMoreKey(c: string): void {
    // IOS erases the pager prompt with backspaces, blanks and backspaces again.
    const erase = `${'\b'.repeat(MORE.length)}${' '.repeat(MORE.length)}${'\b'.repeat(MORE.length)}`;
    if (c === ' ') {
      this.write(erase);
      this.page(this.pending);
    } else if (c === 'q' || c === '\x03') {
      this.write(erase);
      this.pending = [];
      this.state = 'prompt';
      this.write(this.prompt());
    } else if (c === '\r' || c === '\n') {
      this.write(erase);
      const [first, ...rest] = this.pending;
      this.write(`${first ?? ''}\r\n`);
      this.pending = rest;
      if (rest.length === 0) {
        this.state = 'prompt';
        this.write(this.prompt());
      } else {
        this.write(MORE);
      }
    }
  }

  /** Writes `lines` then the prompt, a page at a time unless paging is off. */
  private page(lines: string[]): void {
    const room = this.pageLength - 1;
    if (this.pageLength > 0 && lines.length > room) {
      this.write(lines.slice(0, room).map((l) => `${l}\r\n`).join(''));
      this.pending = lines.slice(room);
      this.state = 'more';
      this.write(MORE);
      return;
    }
    this.pending = [];
    this.state = 'prompt';
    this.write(`${lines.map((l) => `${l}\r\n`).join('')}${this.prompt()}`);
  }

  private invalid(line: string): void {
    const column = this.prompt().length + Math.max(0, line.length - line.trimStart().length);
    this.page([`${' '.repeat(column)}^`, INVALID, '']);
  }

  private handle(line: string): void {
    this.received.push(line);
    const words = line.trim().split(/\s+/u).filter((w) => w !== '');
    const cmd = words.join(' ');
    if (cmd === '') {
      this.write(this.prompt());
      return;
    }
    const isPrivileged = this.mode !== 'user';
    const inConfig = this.mode === 'config' || this.mode === 'config-if';
    if (!inConfig) {
      if (cmd === 'enable') {
        this.mode = 'enable';
        this.page([]);
      } else if (cmd === 'disable') {
        this.mode = 'user';
        this.page([]);
      } else if (/^terminal length \d+$/u.test(cmd)) {
        this.pageLength = Number(words[2]);
        this.page([]);
      } else if (cmd === 'show version') {
        this.page(showVersion(this.hostname));
      } else if (cmd === 'show clock') {
        this.page(['*10:00:00.000 UTC Mon Jan 1 2026']);
      } else if (cmd === 'show logging') {
        this.page(Array.from({ length: 100 }, (_, i) => `Jan  1 10:00:${String(i % 60).padStart(2, '0')}: %SYS-5-LOG: log line ${i + 1}`));
      } else if (cmd === 'show running-config' && isPrivileged) {
        this.page(['Building configuration...', '', `hostname ${this.hostname}`, '!', 'interface GigabitEthernet0/1', ' description uplink', '!', 'end']);
      } else if (cmd === 'show fake-prompt') {
        this.fakePrompt();
      } else if (cmd === 'hang') {
        this.state = 'hang';
      } else if (cmd === 'freeze') {
        this.state = 'frozen';
      } else if ((cmd === 'configure terminal' || cmd === 'conf t') && isPrivileged) {
        this.mode = 'config';
        this.page(['Enter configuration commands, one per line.  End with CNTL/Z.']);
      } else if (cmd === 'exit' || cmd === 'logout') {
        this.stream.exit(0);
        this.stream.end();
      } else {
        this.invalid(line);
      }
      return;
    }
    if (cmd === 'end') {
      this.mode = 'enable';
      this.page([]);
    } else if (cmd === 'exit') {
      this.mode = this.mode === 'config-if' ? 'config' : 'enable';
      this.page([]);
    } else if (words[0] === 'interface' && words.length === 2) {
      this.mode = 'config-if';
      this.page([]);
    } else if (words[0] === 'hostname' && words.length === 2 && this.mode === 'config') {
      this.hostname = words[1] ?? this.hostname;
      this.page([]);
    } else if (words[0] === 'description' && this.mode === 'config-if') {
      this.page([]);
    } else {
      this.invalid(line);
    }
  }

  /** Output with prompt-looking lines; the second chunk ends right after one, then the device pauses. */
  private fakePrompt(): void {
    this.state = 'busy';
    const p = this.prompt();
    this.write(`Fake prompts follow\r\nthe prompt is ${p} here\r\n${p}`);
    setTimeout(() => {
      this.write(`\r\n${this.hostname}(config)#\r\n${p}`);
      setTimeout(() => {
        this.write('\r\nlast line\r\n');
        this.state = 'prompt';
        this.write(p);
      }, 30);
    }, 30);
  }
}

function showVersion(hostname: string): string[] {
  const lines = [
    'Cisco IOS Software (emulated), Version 15.2(4)E10',
    'Technical Support: http://www.example.com/techsupport',
    'Copyright (c) 1986-2026 by Example Systems, Inc.',
    '',
    'ROM: Bootstrap program is C2960X boot loader',
    `${hostname} uptime is 1 week, 2 days, 3 hours, 4 minutes`,
    'System returned to ROM by power-on',
    'System image file is "flash:c2960x-universalk9-mz.152-4.E10.bin"',
    '',
  ];
  for (let i = 1; lines.length < 29; i += 1) lines.push(`GigabitEthernet1/0/${i} is up, line protocol is up`);
  lines.push('Configuration register is 0xF');
  return lines;
}

/** Starts the device on a free port of `options.address`. Any client key or password is accepted. */
export async function startCliDevice(options: CliDeviceOptions): Promise<CliDevice> {
  const hostKey = utils.generateKeyPairSync('ed25519');
  const received: string[] = [];
  const connections = new Set<Connection>();
  let shells = 0;
  const server = new Server({ hostKeys: [hostKey.private] }, (client) => {
    connections.add(client);
    client.on('error', () => undefined);
    client.on('close', () => connections.delete(client));
    client.on('authentication', (ctx) => {
      ctx.accept();
    });
    client.on('ready', () => {
      client.on('session', (accept) => {
        const session = accept();
        session.on('pty', (acceptPty) => {
          acceptPty();
        });
        session.on('window-change', (acceptChange) => {
          acceptChange();
        });
        session.on('env', (acceptEnv) => {
          acceptEnv();
        });
        session.on('exec', (_accept, reject) => {
          reject();
        });
        session.on('shell', (acceptShell) => {
          const stream = acceptShell();
          shells += 1;
          const shell = new DeviceShell(stream, options.hostname ?? 'router', received);
          stream.on('data', (data: Buffer) => {
            shell.onData(data);
          });
          stream.on('error', () => undefined);
          stream.on('close', () => {
            shells -= 1;
          });
          shell.start();
        });
      });
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, options.address, () => {
      resolve();
    });
  });
  const port = (server.address() as AddressInfo).port;
  const [algorithm, key] = hostKey.public.split(' ');
  return {
    address: options.address,
    port,
    knownHostsLine: `[${options.address}]:${port} ${algorithm ?? ''} ${key ?? ''}`,
    received,
    openShells: () => shells,
    async close() {
      for (const c of connections) c.end();
      await new Promise<void>((resolve) => {
        server.close(() => {
          resolve();
        });
      });
    },
  };
}
