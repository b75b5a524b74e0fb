// Tiers are ordered read < write < exec < sudo; a tool needs a tier at or below the effective one.

export const TIERS = ['read', 'write', 'exec', 'sudo'] as const;
export type Tier = (typeof TIERS)[number];

/** Index of a tier in the order read(0) < write(1) < exec(2) < sudo(3). */
export function tierRank(tier: Tier): number {
  return TIERS.indexOf(tier);
}

/** True when `have` is at or above `need`. */
export function tierAllows(have: Tier, need: Tier): boolean {
  return tierRank(have) >= tierRank(need);
}

/** The lower of two tiers (the effective tier of a host is min(global, host)). */
export function minTier(a: Tier, b: Tier): Tier {
  return tierRank(a) <= tierRank(b) ? a : b;
}
