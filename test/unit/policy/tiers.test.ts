// Tiers are ordered read < write < exec < sudo; the effective tier of a host is the lower of two.
import { describe, expect, it } from 'vitest';
import { minTier, tierAllows, tierRank, TIERS } from '../../../src/policy/tiers.js';

describe('tiers', () => {
  it('are ordered read < write < exec < sudo', () => {
    expect(TIERS.map(tierRank)).toEqual([0, 1, 2, 3]);
  });
  it.each([
    ['read', 'read', true],
    ['read', 'write', false],
    ['exec', 'write', true],
    ['exec', 'sudo', false],
    ['sudo', 'exec', true],
  ] as const)('a host at %s allows a %s tool: %s', (have, need, ok) => {
    expect(tierAllows(have, need)).toBe(ok);
  });
  it.each([
    ['exec', 'read', 'read'],
    ['read', 'sudo', 'read'],
    ['write', 'write', 'write'],
  ] as const)('min(%s, %s) = %s', (a, b, m) => {
    expect(minTier(a, b)).toBe(m);
  });
});
