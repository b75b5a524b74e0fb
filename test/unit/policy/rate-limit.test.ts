// Rate and concurrency limits against a fake clock: bursts, refill, slots, isolation between principals.
import { describe, expect, it } from 'vitest';

import { SshgateError } from '../../../src/errors.js';
import { assertRate, CONCURRENCY_RETRY_MS, RateLimiter, type RateDecision, type RateRules } from '../../../src/policy/rate-limit.js';

/** A clock the test moves by hand. */
function fakeClock(start = 1_000_000): { now: () => number; advance: (ms: number) => void; set: (ms: number) => void } {
  let t = start;
  return {
    now: () => t,
    advance: (ms) => {
      t += ms;
    },
    set: (ms) => {
      t = ms;
    },
  };
}

function refusal(decision: RateDecision): { rule: string; retryAfterMs: number; message: string } {
  if (decision.ok) throw new Error('expected a refusal');
  return decision;
}

function okCount(limiter: RateLimiter, n: number, principal: string, host: string | null, rules?: RateRules): number {
  let ok = 0;
  for (let i = 0; i < n; i++) {
    const d = limiter.take(principal, host, rules);
    if (d.ok) {
      ok++;
      d.release();
    }
  }
  return ok;
}

describe('RateLimiter per_minute', () => {
  it.each<[string, number, number]>([
    ['a burst of 60 with per_minute 60, then the 61st waits one token (1000 ms)', 60, 1000],
    ['a burst of 1 with per_minute 1, then a full minute', 1, 60_000],
    ['a burst of 7 with per_minute 7 (a non-integer refill period rounds up)', 7, 8572],
  ])('%s', (_name, perMinute, retryAfterMs) => {
    const clock = fakeClock();
    const limiter = new RateLimiter({ now: clock.now });
    const rules = { per_minute: perMinute };
    expect(okCount(limiter, perMinute, 'p', 'web1', rules)).toBe(perMinute);
    const refused = refusal(limiter.take('p', 'web1', rules));
    expect(refused.rule).toBe('rate.per_minute');
    expect(refused.retryAfterMs).toBe(retryAfterMs);
    // One ms short of the promised time is still too early; the promised time is enough.
    clock.advance(retryAfterMs - 1);
    expect(limiter.take('p', 'web1', rules).ok).toBe(false);
    clock.advance(1);
    expect(limiter.take('p', 'web1', rules).ok).toBe(true);
  });

  it('refills gradually over time with the fake clock', () => {
    const clock = fakeClock();
    const limiter = new RateLimiter({ now: clock.now });
    const rules = { per_minute: 60 };
    expect(okCount(limiter, 100, 'p', 'web1', rules)).toBe(60);
    clock.advance(10_000);
    expect(okCount(limiter, 100, 'p', 'web1', rules)).toBe(10);
    clock.advance(500);
    expect(refusal(limiter.take('p', 'web1', rules)).retryAfterMs).toBe(500);
  });

  it('never refills above capacity after a long idle time', () => {
    const clock = fakeClock();
    const limiter = new RateLimiter({ now: clock.now });
    const rules = { per_minute: 5 };
    expect(okCount(limiter, 5, 'p', 'web1', rules)).toBe(5);
    clock.advance(24 * 3_600_000);
    expect(okCount(limiter, 100, 'p', 'web1', rules)).toBe(5);
  });

  it('a refused call consumes no token', () => {
    const clock = fakeClock();
    const limiter = new RateLimiter({ now: clock.now });
    const rules = { per_minute: 2 };
    expect(okCount(limiter, 2, 'p', 'web1', rules)).toBe(2);
    for (let i = 0; i < 50; i++) expect(limiter.take('p', 'web1', rules).ok).toBe(false);
    clock.advance(30_000);
    expect(limiter.take('p', 'web1', rules).ok).toBe(true);
  });

  it('a clock that goes backwards refills nothing and does not break a later refill', () => {
    const clock = fakeClock(1_000_000);
    const limiter = new RateLimiter({ now: clock.now });
    const rules = { per_minute: 60 };
    expect(okCount(limiter, 60, 'p', 'web1', rules)).toBe(60);
    clock.set(0);
    expect(refusal(limiter.take('p', 'web1', rules)).retryAfterMs).toBe(1000);
    clock.set(1_001_000);
    expect(okCount(limiter, 100, 'p', 'web1', rules)).toBe(1);
  });

  it('says which limit was hit, on which host, and the config key', () => {
    const limiter = new RateLimiter({ now: fakeClock().now });
    limiter.take('p', 'web1', { per_minute: 1 });
    expect(refusal(limiter.take('p', 'web1', { per_minute: 1 })).message).toBe(
      'Rate limit reached: at most 1 calls per minute to host web1 ' +
        '(rule rate.per_minute, config key hosts.web1.rate.per_minute); retry after 60000 ms.',
    );
  });
});

describe('RateLimiter concurrency', () => {
  it('refuses past the limit with "N calls already in flight" and frees the slot on release', () => {
    const limiter = new RateLimiter({ now: fakeClock().now });
    const rules = { concurrency: 2 };
    const a = limiter.take('p', 'web1', rules);
    const b = limiter.take('p', 'web1', rules);
    expect(a.ok && b.ok).toBe(true);
    const refused = refusal(limiter.take('p', 'web1', rules));
    expect(refused).toMatchObject({ rule: 'rate.concurrency', retryAfterMs: CONCURRENCY_RETRY_MS });
    expect(refused.message).toContain('2 calls already in flight to host web1, the limit is 2');
    expect(refused.message).toContain('config key hosts.web1.rate.concurrency');
    if (a.ok) a.release();
    expect(limiter.take('p', 'web1', rules).ok).toBe(true);
  });

  it('double release does not free two slots', () => {
    const limiter = new RateLimiter({ now: fakeClock().now });
    const rules = { concurrency: 2 };
    const a = limiter.take('p', 'web1', rules);
    const b = limiter.take('p', 'web1', rules);
    expect(b.ok).toBe(true);
    if (!a.ok) throw new Error('expected ok');
    a.release();
    a.release();
    a.release();
    expect(limiter.take('p', 'web1', rules).ok).toBe(true);
    expect(refusal(limiter.take('p', 'web1', rules)).rule).toBe('rate.concurrency');
  });

  it('a refused call holds no slot', () => {
    const limiter = new RateLimiter({ now: fakeClock().now });
    const rules = { concurrency: 1 };
    const a = limiter.take('p', 'web1', rules);
    for (let i = 0; i < 10; i++) expect(limiter.take('p', 'web1', rules).ok).toBe(false);
    if (a.ok) a.release();
    expect(limiter.take('p', 'web1', rules).ok).toBe(true);
  });

  it('a call refused by concurrency consumes no per_minute token', () => {
    const clock = fakeClock();
    const limiter = new RateLimiter({ now: clock.now });
    const rules = { per_minute: 2, concurrency: 1 };
    const a = limiter.take('p', 'web1', rules);
    expect(refusal(limiter.take('p', 'web1', rules)).rule).toBe('rate.concurrency');
    if (a.ok) a.release();
    expect(limiter.take('p', 'web1', rules).ok).toBe(true);
    expect(refusal(limiter.take('p', 'web1', rules)).rule).toBe('rate.per_minute');
  });
});

describe('RateLimiter scopes', () => {
  it('different principals do not share host buckets', () => {
    const limiter = new RateLimiter({ now: fakeClock().now });
    const rules = { per_minute: 3, concurrency: 1 };
    const alice = limiter.take('alice', 'web1', rules);
    expect(alice.ok).toBe(true);
    expect(limiter.take('alice', 'web1', rules).ok).toBe(false);
    const bob = limiter.take('bob', 'web1', rules);
    expect(bob.ok).toBe(true);
    if (bob.ok) bob.release();
    expect(okCount(limiter, 10, 'bob', 'web1', rules)).toBe(2);
  });

  it('different hosts of one principal do not share host buckets', () => {
    const limiter = new RateLimiter({ now: fakeClock().now });
    const rules = { per_minute: 2 };
    expect(okCount(limiter, 5, 'p', 'web1', rules)).toBe(2);
    expect(okCount(limiter, 5, 'p', 'web2', rules)).toBe(2);
  });

  it('the global per_minute ceiling counts calls across hosts', () => {
    const limiter = new RateLimiter({ global: { per_minute: 5 }, now: fakeClock().now });
    const rules = { per_minute: 100 };
    expect(okCount(limiter, 3, 'p', 'web1', rules)).toBe(3);
    expect(okCount(limiter, 3, 'p', 'web2', rules)).toBe(2);
    const refused = refusal(limiter.take('p', 'web3', undefined));
    expect(refused).toMatchObject({ rule: 'global.per_minute', retryAfterMs: 12_000 });
    expect(refused.message).toBe(
      'Rate limit reached: at most 5 calls per minute across all hosts (rule global.per_minute); retry after 12000 ms.',
    );
  });

  it('the global ceiling is per principal', () => {
    const limiter = new RateLimiter({ global: { per_minute: 2 }, now: fakeClock().now });
    expect(okCount(limiter, 5, 'alice', 'web1', undefined)).toBe(2);
    expect(okCount(limiter, 5, 'bob', 'web1', undefined)).toBe(2);
  });

  it('the global concurrency ceiling counts calls in flight across hosts', () => {
    const limiter = new RateLimiter({ global: { concurrency: 2 }, now: fakeClock().now });
    const a = limiter.take('p', 'web1', { concurrency: 5 });
    const b = limiter.take('p', 'web2', undefined);
    expect(a.ok && b.ok).toBe(true);
    const refused = refusal(limiter.take('p', 'web3', { concurrency: 5 }));
    expect(refused.rule).toBe('global.concurrency');
    expect(refused.message).toContain('2 calls already in flight across all hosts, the limit is 2 (rule global.concurrency)');
    if (b.ok) b.release();
    expect(limiter.take('p', 'web3', { concurrency: 5 }).ok).toBe(true);
  });

  it('host null (e.g. ssh_list_hosts) only counts against the global ceiling', () => {
    const limiter = new RateLimiter({ global: { per_minute: 3 }, now: fakeClock().now });
    const hostRules = { per_minute: 1 };
    expect(okCount(limiter, 2, 'p', null, hostRules)).toBe(2);
    expect(limiter.take('p', 'web1', hostRules).ok).toBe(true);
    expect(refusal(limiter.take('p', null, hostRules)).rule).toBe('global.per_minute');
  });

  it('host null without a global ceiling is never limited', () => {
    const limiter = new RateLimiter({ now: fakeClock().now });
    expect(okCount(limiter, 1000, 'p', null, { per_minute: 1, concurrency: 1 })).toBe(1000);
  });

  it.each<[string, RateRules | null | undefined]>([
    ['undefined rules', undefined],
    ['null rules (no rate in the resolved host)', null],
    ['rules whose fields are undefined', { per_minute: undefined, concurrency: undefined }],
    ['empty rules', {}],
  ])('a host with %s is not limited', (_name, rules) => {
    const limiter = new RateLimiter({ now: fakeClock().now });
    const held: RateDecision[] = [];
    for (let i = 0; i < 1000; i++) held.push(limiter.take('p', 'web1', rules));
    expect(held.every((d) => d.ok)).toBe(true);
  });

  it('a host refusal takes no global token, and a global refusal takes no host token', () => {
    const clock = fakeClock();
    const limiter = new RateLimiter({ global: { per_minute: 2 }, now: clock.now });
    expect(okCount(limiter, 1, 'p', 'web1', { per_minute: 1 })).toBe(1);
    expect(refusal(limiter.take('p', 'web1', { per_minute: 1 })).rule).toBe('rate.per_minute');
    // The global bucket still has its second token.
    expect(limiter.take('p', 'web2', { per_minute: 1 }).ok).toBe(true);
    expect(refusal(limiter.take('p', 'web3', { per_minute: 1 })).rule).toBe('global.per_minute');
    // web3's bucket was not charged by the refusal: after the global refill, web3 goes through.
    clock.advance(30_000);
    expect(limiter.take('p', 'web3', { per_minute: 1 }).ok).toBe(true);
  });

  it('a global concurrency slot is freed with the host slot on release', () => {
    const limiter = new RateLimiter({ global: { concurrency: 1 }, now: fakeClock().now });
    const a = limiter.take('p', 'web1', { concurrency: 1 });
    expect(refusal(limiter.take('p', 'web2', undefined)).rule).toBe('global.concurrency');
    if (a.ok) a.release();
    expect(limiter.take('p', 'web1', { concurrency: 1 }).ok).toBe(true);
  });

  it.each<[string, RateRules, RateRules, string, number]>([
    ['the host per_minute wait over a shorter global one', { per_minute: 60 }, { per_minute: 1 }, 'rate.per_minute', 60_000],
    ['the global per_minute wait over a host concurrency one', { per_minute: 1 }, { concurrency: 1 }, 'global.per_minute', 60_000],
    ['the host per_minute wait over a global concurrency one', { concurrency: 1 }, { per_minute: 1 }, 'rate.per_minute', 60_000],
    ['the first refusal (global) on a tie', { concurrency: 1 }, { concurrency: 1 }, 'global.concurrency', CONCURRENCY_RETRY_MS],
  ])('when several limits are hit, reports %s', (_name, global, host, rule, retryAfterMs) => {
    const limiter = new RateLimiter({ global, now: fakeClock().now });
    // 1. One call to web1 kept in flight, 2. the global scope drained by host-less calls, 3. both scopes refuse.
    expect(limiter.take('p', 'web1', host).ok).toBe(true);
    okCount(limiter, 100, 'p', null);
    expect(refusal(limiter.take('p', 'web1', host))).toMatchObject({ rule, retryAfterMs });
  });

  it('within one scope, a per_minute wait beats a concurrency wait', () => {
    const limiter = new RateLimiter({ now: fakeClock().now });
    const rules = { per_minute: 1, concurrency: 1 };
    expect(limiter.take('p', 'web1', rules).ok).toBe(true);
    expect(refusal(limiter.take('p', 'web1', rules))).toMatchObject({ rule: 'rate.per_minute', retryAfterMs: 60_000 });
  });

  it('uses the real clock when none is injected', () => {
    const limiter = new RateLimiter();
    expect(limiter.take('p', 'web1', { per_minute: 1 }).ok).toBe(true);
    const refused = refusal(limiter.take('p', 'web1', { per_minute: 1 }));
    expect(refused.retryAfterMs).toBeGreaterThan(0);
    expect(refused.retryAfterMs).toBeLessThanOrEqual(60_000);
  });
});

describe('assertRate', () => {
  it('returns the release of an admitted call', () => {
    const limiter = new RateLimiter({ now: fakeClock().now });
    const release = assertRate(limiter.take('p', 'web1', { concurrency: 1 }));
    expect(limiter.take('p', 'web1', { concurrency: 1 }).ok).toBe(false);
    release();
    expect(limiter.take('p', 'web1', { concurrency: 1 }).ok).toBe(true);
  });

  it('throws RATE_LIMITED with a retry hint and retry_after_ms', () => {
    const limiter = new RateLimiter({ now: fakeClock().now });
    limiter.take('p', 'web1', { per_minute: 60 });
    for (let i = 0; i < 59; i++) limiter.take('p', 'web1', { per_minute: 60 });
    let caught: unknown;
    try {
      assertRate(limiter.take('p', 'web1', { per_minute: 60 }));
    } catch (err) {
      caught = err;
    }
    expect(caught).toBeInstanceOf(SshgateError);
    expect(caught).toMatchObject({
      code: 'RATE_LIMITED',
      category: 'policy',
      retryable: true,
      hint: 'retry after 1000 ms',
      details: { rule: 'rate.per_minute', retry_after_ms: 1000 },
      message: expect.stringContaining('at most 60 calls per minute to host web1') as unknown,
    });
  });
});
