// The CLI: argv -> config -> server -> transport; nothing else. stdout belongs to MCP in serve mode.
// src/main.ts loads it once Node runs with sshgate's runtime flags (./relaunch.ts).
import { Command, Option } from 'commander';
import { SshgateError } from '../errors.js';
import { createLogger } from '../log.js';
import { TIERS, type Tier } from '../policy/tiers.js';
import { SERVER_INFO } from '../server/create-server.js';

const log = createLogger();

function fail(err: unknown): never {
  if (err instanceof SshgateError) {
    process.stderr.write(`sshgate: ${err.code}: ${err.message}\n`);
    process.exit(2);
  }
  process.stderr.write(`sshgate: ${(err as Error).stack ?? String(err)}\n`);
  process.exit(1);
}

const program = new Command()
  .name('sshgate')
  .description('MCP server that lets AI assistants operate SSH hosts under a policy, with verified host keys and an audit log.')
  .version(SERVER_INFO.version)
  .showHelpAfterError();

const configOption = (): Option => new Option('-c, --config <path>', 'config file (default $SSHGATE_CONFIG, then ~/.config/sshgate/config.yaml)').env('SSHGATE_CONFIG');
const tierOption = (): Option => new Option('--tier <tier>', 'lower the global tier for this run (never raises it)').choices(TIERS);

async function serve(opts: { config?: string; tier?: Tier }): Promise<void> {
  const { runServe } = await import('./serve.js');
  await runServe({ ...(opts.config === undefined ? {} : { config: opts.config }), ...(opts.tier === undefined ? {} : { tier: opts.tier }) }, log);
}

program
  .command('serve', { isDefault: true })
  .description('serve MCP on stdio (what MCP clients start)')
  .addOption(configOption())
  .addOption(tierOption())
  .action(async (opts: { config?: string; tier?: Tier }) => {
    await serve(opts);
  });

program
  .command('demo')
  .description('start a throwaway sshd on loopback and drive sshgate through a narrated session')
  .option('--keep', 'keep the temporary directory (config, keys, audit log) for inspection')
  .action(async (opts: { keep?: boolean }) => {
    const { runDemo } = await import('./demo.js');
    process.exitCode = await runDemo({ keep: opts.keep === true });
  });

const configFlags = (opts: { config?: string }): { config?: string } => (opts.config === undefined ? {} : { config: opts.config });

program
  .command('approvals')
  .description('list the calls waiting for a human approval')
  .addOption(configOption())
  .action(async (opts: { config?: string }) => {
    const { runApprovals } = await import('./approve.js');
    process.exitCode = await runApprovals(configFlags(opts), (line) => process.stdout.write(`${line}\n`));
  });

for (const [name, decision, help] of [
  ['approve', 'approved', 'approve one pending call (shows it first; asks to confirm on a terminal)'],
  ['deny', 'denied', 'refuse one pending call'],
] as const) {
  program
    .command(name)
    .argument('<id>', 'approval id, from the refusal the model got or from `sshgate approvals`')
    .description(help)
    .addOption(configOption())
    .option('-y, --yes', 'do not ask for confirmation')
    .action(async (id: string, opts: { config?: string; yes?: boolean }) => {
      const { runDecide } = await import('./approve.js');
      process.exitCode = await runDecide(configFlags(opts), id, decision, opts.yes === true, (line) => process.stdout.write(`${line}\n`));
    });
}

const audit = program.command('audit').description('audit log tools');
audit
  .command('verify')
  .argument('<file>', 'audit log (JSON Lines)')
  .description('check the hash chain: exit 0 when intact, 1 naming the first bad line')
  .action(async (file: string) => {
    const { runAuditVerify } = await import('./audit.js');
    process.exitCode = await runAuditVerify(file, (line) => process.stdout.write(`${line}\n`));
  });

program.parseAsync(process.argv).catch(fail);
