// Caps how fast and how many calls at once a principal sends, per host and across all hosts, so a looping
// or prompt-injected model cannot hammer a fleet.
import { SshgateError } from '../errors.js';

/** Limits of one scope (a host's `rate`, or the global ceiling). An absent (or undefined) field is no limit. */
export interface RateRules {
  /** Calls per minute: a token bucket holding at most this many calls, refilled evenly over a minute. */
  per_minute?: number | undefined;
  /** Calls in flight at once. */
  concurrency?: number | undefined;
}

/**
 * The outcome of {@link RateLimiter.take}. When `ok`, the call holds one concurrency slot in each scope until
 * `release` is called (idempotent: only the first call frees anything). When refused, nothing was taken;
 * `rule` is `global.per_minute`, `global.concurrency`, `rate.per_minute` or `rate.concurrency`.
 */
export type RateDecision =
  | { ok: true; release: () => void }
  | { ok: false; rule: string; retryAfterMs: number; message: string };

/** Suggested wait when every concurrency slot is taken: the slot frees when a call ends, which no clock predicts. */
export const CONCURRENCY_RETRY_MS = 1000;

/**
 * One token of a bucket, in token-units: a bucket of `per_minute` tokens refills `per_minute` units per ms, so
 * all arithmetic stays in integers and a retry after `retryAfterMs` always finds the token there.
 */
const UNITS_PER_TOKEN = 60_000;

interface Bucket {
  /** Token-units available (at most per_minute * UNITS_PER_TOKEN) as of `updatedMs`; Infinity until first used. */
  units: number;
  updatedMs: number;
  inFlight: number;
}

interface Refusal {
  rule: string;
  retryAfterMs: number;
  message: string;
}

/** One scope a call is checked in: its bucket, its limits and how messages name it. */
interface Scope {
  bucket: Bucket;
  rules: RateRules;
  prefix: 'global' | 'rate';
  what: string;
  /** The parenthesised source of a limit in messages: the rule, and the config key when one is known. */
  source: (field: string) => string;
}

/**
 * Per-principal rate and concurrency limits: one bucket per principal and host for the host's `rate`, and one
 * per principal for the global ceiling. Principals never share buckets. State is created only for scopes that
 * have a limit, so host aliases without `rate` (including unknown ones) cost no memory; buckets are never
 * evicted. Pure: time comes only from `now` (ms, default `Date.now`); a clock that goes backwards refills nothing.
 */
export class RateLimiter {
  readonly #global: RateRules;
  readonly #now: () => number;
  readonly #globalBuckets = new Map<string, Bucket>();
  readonly #hostBuckets = new Map<string, Bucket>();

  constructor(options: { global?: RateRules | null | undefined; now?: (() => number) | undefined } = {}) {
    this.#global = options.global ?? {};
    this.#now = options.now ?? (() => Date.now());
  }

  /**
   * Admits or refuses one call of `principal` to `host` (`null` for calls that reach no host, which count only
   * against the global ceiling). `rules` is the host's `rate`; null or undefined means none.
   * Order: 1. the global scope, 2. the host scope. A token and a concurrency slot are taken from every scope only
   * when every check passes, so a refused call costs nothing. When several checks fail, the refusal with the
   * longest wait is reported, so one retry can succeed.
   */
  take(principal: string, host: string | null, rules: RateRules | null | undefined): RateDecision {
    const now = this.#now();
    const scopes: Scope[] = [];
    if (hasLimit(this.#global)) {
      scopes.push({
        bucket: bucketOf(this.#globalBuckets, principal, now),
        rules: this.#global,
        prefix: 'global',
        what: 'across all hosts',
        source: (field) => `rule global.${field}`,
      });
    }
    if (host !== null && rules != null && hasLimit(rules)) {
      scopes.push({
        bucket: bucketOf(this.#hostBuckets, `${principal}\u0000${host}`, now),
        rules,
        prefix: 'rate',
        what: `to host ${host}`,
        source: (field) => `rule rate.${field}, config key hosts.${host}.rate.${field}`,
      });
    }

    let worst: Refusal | undefined;
    for (const scope of scopes) {
      for (const refusal of check(scope, now)) {
        if (worst === undefined || refusal.retryAfterMs > worst.retryAfterMs) worst = refusal;
      }
    }
    if (worst !== undefined) return { ok: false, ...worst };

    for (const { bucket, rules: scopeRules } of scopes) {
      if (scopeRules.per_minute !== undefined) bucket.units -= UNITS_PER_TOKEN;
      bucket.inFlight += 1;
    }
    let released = false;
    return {
      ok: true,
      release: () => {
        if (released) return;
        released = true;
        for (const { bucket } of scopes) bucket.inFlight -= 1;
      },
    };
  }
}

function hasLimit(rules: RateRules): boolean {
  return rules.per_minute !== undefined || rules.concurrency !== undefined;
}

function bucketOf(buckets: Map<string, Bucket>, key: string, now: number): Bucket {
  let bucket = buckets.get(key);
  if (bucket === undefined) {
    bucket = { units: Number.POSITIVE_INFINITY, updatedMs: now, inFlight: 0 };
    buckets.set(key, bucket);
  }
  return bucket;
}

/** Refills the scope's bucket up to `now` and returns the checks it fails (none when the call may go). */
function check({ bucket, rules, prefix, what, source }: Scope, now: number): Refusal[] {
  const refusals: Refusal[] = [];
  const perMinute = rules.per_minute;
  if (perMinute !== undefined) {
    const capacity = perMinute * UNITS_PER_TOKEN;
    // A new bucket starts full; a clock that went backwards refills nothing.
    bucket.units = Math.min(capacity, bucket.units + Math.max(0, now - bucket.updatedMs) * perMinute);
    if (bucket.units < UNITS_PER_TOKEN) {
      const retryAfterMs = Math.ceil((UNITS_PER_TOKEN - bucket.units) / perMinute);
      refusals.push({
        rule: `${prefix}.per_minute`,
        retryAfterMs,
        message:
          `Rate limit reached: at most ${perMinute} calls per minute ${what} (${source('per_minute')}); ` +
          `retry after ${retryAfterMs} ms.`,
      });
    }
  }
  bucket.updatedMs = Math.max(bucket.updatedMs, now);
  const concurrency = rules.concurrency;
  if (concurrency !== undefined && bucket.inFlight >= concurrency) {
    refusals.push({
      rule: `${prefix}.concurrency`,
      retryAfterMs: CONCURRENCY_RETRY_MS,
      message:
        `Concurrency limit reached: ${bucket.inFlight} calls already in flight ${what}, the limit is ${concurrency} ` +
        `(${source('concurrency')}); retry after ${CONCURRENCY_RETRY_MS} ms, ` +
        'or wait for a running call to finish.',
    });
  }
  return refusals;
}

/**
 * Returns the `release` of an admitted call.
 * @throws SshgateError `RATE_LIMITED` (retryable) with the decision's message, `hint: 'retry after N ms'` and
 *   `details: { rule, retry_after_ms }`.
 */
export function assertRate(decision: RateDecision): () => void {
  if (decision.ok) return decision.release;
  throw new SshgateError('RATE_LIMITED', decision.message, {
    hint: `retry after ${decision.retryAfterMs} ms`,
    details: { rule: decision.rule, retry_after_ms: decision.retryAfterMs },
  });
}
