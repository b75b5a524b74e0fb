// `sshgate serve`: load the config, build the runtime, serve MCP on stdio until the client goes away.
import { loadConfig, type ConfigFlags } from '../config/load.js';
import type { Logger } from '../log.js';
import { createServer } from '../server/create-server.js';
import { selectTools } from '../server/registry.js';
import { closeRuntime, createRuntime } from '../server/runtime.js';
import { allTools } from '../tools/index.js';
import { nativeCryptoAvailable, nativeCryptoBlocked } from '../ssh/native-crypto.js';
import { serveOnStdio } from '../transports/stdio.js';

/**
 * Runs the stdio server. Start-up errors (invalid config, unwritable audit log) are thrown before anything
 * is written to stdout.
 */
export async function runServe(flags: ConfigFlags, log: Logger): Promise<void> {
  const loaded = await loadConfig(flags);
  const runtime = await createRuntime(loaded, log);
  const tools = selectTools(allTools, loaded.config);
  log.info(
    { config: loaded.source.path, source: loaded.source.kind, hosts: loaded.hosts.size, tier: loaded.config.tier, tools: tools.length },
    'sshgate serving on stdio',
  );
  if (!nativeCryptoAvailable()) {
    log.warn(
      { node: process.version, reason: nativeCryptoBlocked ?? 'not built for this Node' },
      "ssh2's native crypto binding is not loaded: SSH runs its ciphers in JavaScript and transfers are slower; in a checkout, `npm run prepare` builds a safe one",
    );
  }
  const { handle, closed } = serveOnStdio(() => createServer(tools, runtime), log);
  const stop = async (): Promise<void> => {
    await handle.close().catch(() => undefined);
    await closeRuntime(runtime).catch(() => undefined);
  };
  process.once('SIGTERM', () => void stop().then(() => process.exit(0)));
  process.once('SIGINT', () => void stop().then(() => process.exit(0)));
  await closed;
  await stop();
}
