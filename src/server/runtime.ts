// Builds the long-lived parts a server needs from a loaded config: pool, audit log, redactor, rate limiter.
import { userInfo } from 'node:os';
import { AuditLog } from '../audit/audit-log.js';
import { configuredSecrets, type LoadedConfig } from '../config/load.js';
import type { Logger } from '../log.js';
import { Redactor } from '../policy/redaction.js';
import { RateLimiter } from '../policy/rate-limit.js';
import { KnownHostsStore } from '../ssh/connect.js';
import { createInventory } from '../ssh/facade.js';
import { ConnectionPool } from '../ssh/pool.js';
import { ServerState } from '../ssh/state.js';
import type { Runtime } from './registry.js';
import { ApprovalStore } from './approvals.js';

/**
 * Opens the audit log and creates the pool and policy state for `loaded`.
 * @throws SshgateError AUDIT_FAILED when the audit log cannot be opened (the server does not start).
 */
export async function createRuntime(loaded: LoadedConfig, log: Logger, env: NodeJS.ProcessEnv = process.env): Promise<Runtime> {
  const pool = loaded.config.pool;
  const audit = await AuditLog.open(loaded.auditPath);
  return {
    loaded,
    pool: new ConnectionPool(
      new KnownHostsStore(loaded.knownHostsFile, loaded.config.known_hosts.mode),
      {
        idleTimeoutMs: pool.idle_timeout_ms,
        maxConnectionsPerHost: pool.max_connections_per_host,
        maxChannelsPerConnection: pool.max_channels_per_connection,
        maxHandshakesPerHost: pool.max_handshakes_per_host,
        keepaliveIntervalMs: pool.keepalive_interval_ms,
        keepaliveCountMax: pool.keepalive_count_max,
        connectTimeoutMs: pool.connect_timeout_ms,
      },
      log,
    ),
    audit,
    redactor: new Redactor({ secrets: configuredSecrets(loaded, env) }),
    rate: new RateLimiter({ global: loaded.config.rate }),
    log,
    inventory: createInventory(loaded.hosts, loaded.config.templates),
    principal: `stdio:${safeUser()}`,
    auditState: { failing: false },
    tools: [],
    state: new ServerState(),
    approvals: new ApprovalStore(loaded.approvalsDir, loaded.config.approvals.ttl_ms),
    approvalNonces: new Map(),
  };
}

function safeUser(): string {
  try {
    return userInfo().username;
  } catch {
    return 'unknown';
  }
}

/** Closes connections and the audit log. */
export async function closeRuntime(runtime: Runtime): Promise<void> {
  await runtime.state.closeAll();
  runtime.pool.closeAll();
  await runtime.audit.close();
}
