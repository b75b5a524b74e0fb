// Host key verification against real sshd: unknown and changed keys are refused before any authentication.
import { readFileSync, writeFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { generateKey, startSshd, type SshdInstance } from '../../src/testing/sshd.js';
import { startHarness } from '../helpers/harness.js';
import { join } from 'node:path';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';

let sshd: SshdInstance;

beforeAll(async () => {
  sshd = await startSshd({ address: '127.0.0.2' });
});
afterAll(async () => {
  await sshd.stop();
});

/** Lines of the sshd log that show an authentication attempt (LogLevel VERBOSE logs each one). */
function authAttempts(): string[] {
  return readFileSync(join(sshd.dir, 'sshd.log'), 'utf8')
    .split('\n')
    .filter((l) => /Accepted |Failed |Postponed |userauth|Connection closed by authenticating user/u.test(l));
}

describe('known_hosts verification', () => {
  it('refuses an unknown host with HOST_KEY_UNKNOWN, the fingerprint and the line to pin it, before authenticating', async () => {
    const h = await startHarness({ hosts: { target: { sshd } }, emptyKnownHosts: true });
    try {
      const before = authAttempts().length;
      const e = await h.err('ssh_ping_host', { host: 'target' });
      expect(e.code).toBe('HOST_KEY_UNKNOWN');
      expect(e.message).toMatch(/SHA256:[A-Za-z0-9+/]{43}/u);
      expect(e.message).toContain(`[127.0.0.2]:${sshd.port}`);
      expect(String(e.details?.['known_hosts_line'])).toContain(`[127.0.0.2]:${sshd.port} ssh-ed25519 `);
      expect(authAttempts().length).toBe(before);
      expect(readFileSync(h.knownHostsPath, 'utf8')).toBe('');
      // Positive control: once the key is pinned, the same call authenticates, and the log shows it.
      writeFileSync(h.knownHostsPath, `${String(e.details?.['known_hosts_line'])}\n`);
      await h.ok('ssh_ping_host', { host: 'target' });
      expect(authAttempts().length).toBeGreaterThan(before);
    } finally {
      await h.close();
    }
  });

  it('refuses a changed host key with HOST_KEY_MISMATCH and never rewrites known_hosts, even in accept-new mode', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'sshgate-kh-'));
    const otherPub = await generateKey(join(dir, 'other'), 'ed25519');
    const h = await startHarness({ hosts: { target: { sshd } }, config: { known_hosts: { mode: 'accept-new' } } });
    try {
      const forged = `[127.0.0.2]:${sshd.port} ${otherPub.split(' ').slice(0, 2).join(' ')}\n`;
      writeFileSync(h.knownHostsPath, forged);
      const before = authAttempts().length;
      const e = await h.err('ssh_ping_host', { host: 'target' });
      expect(e.code).toBe('HOST_KEY_MISMATCH');
      expect(e.message).toMatch(/man-in-the-middle/iu);
      expect(authAttempts().length).toBe(before);
      expect(readFileSync(h.knownHostsPath, 'utf8')).toBe(forged);
    } finally {
      await h.close();
    }
  });

  it('accept-new records a first-seen key, then trusts it', async () => {
    const h = await startHarness({ hosts: { target: { sshd } }, emptyKnownHosts: true, config: { known_hosts: { mode: 'accept-new' } } });
    try {
      await h.ok('ssh_ping_host', { host: 'target' });
      const text = readFileSync(h.knownHostsPath, 'utf8');
      expect(text).toContain(`[127.0.0.2]:${sshd.port} ssh-ed25519 `);
      expect(text.trim().split('\n')).toHaveLength(1);
    } finally {
      await h.close();
    }
  });

  it('trusts a hashed known_hosts entry (ssh-keygen -H)', async () => {
    const h = await startHarness({ hosts: { target: { sshd } } });
    try {
      const { execFileSync } = await import('node:child_process');
      execFileSync('ssh-keygen', ['-H', '-f', h.knownHostsPath], { stdio: 'ignore' });
      expect(readFileSync(h.knownHostsPath, 'utf8')).toMatch(/^\|1\|/u);
      await h.ok('ssh_ping_host', { host: 'target' });
    } finally {
      await h.close();
    }
  });

  it('refuses a key marked @revoked', async () => {
    const h = await startHarness({ hosts: { target: { sshd } } });
    try {
      const key = sshd.knownHostsLine.split(' ').slice(1).join(' ');
      writeFileSync(h.knownHostsPath, `${sshd.knownHostsLine}\n@revoked * ${key}\n`);
      expect((await h.err('ssh_ping_host', { host: 'target' })).code).toBe('HOST_KEY_REVOKED');
    } finally {
      await h.close();
    }
  });
});
