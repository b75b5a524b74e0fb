// Which calls need a human's approval, and the digest an approval is bound to: pure, no I/O.
import { createHash } from 'node:crypto';
import type { Tier } from './tiers.js';

/** Keywords of a host's `approval` list; any other entry is a regex matched against the call's command. */
export const APPROVAL_KEYWORDS = ['destructive', 'write', 'exec', 'sudo'] as const;
export type ApprovalKeyword = (typeof APPROVAL_KEYWORDS)[number];

/** What the approval rules look at in a call. */
export interface ApprovalSubject {
  tier: Tier;
  destructive: boolean;
  /** The command that will run, for exec-like tools. */
  command?: string | undefined;
}

/**
 * Returns the first rule of `rules` that asks for approval of this call, written as it appears in the config
 * (`destructive`, `exec`, `sudo`, `write`, or the regex), or null when none does.
 * - `destructive`: the tool is marked destructive (writes that replace data, removals, commands);
 * - `write` / `exec` / `sudo`: the tool's tier is exactly that tier or higher (`write` covers everything that
 *   changes the host);
 * - any other entry: a regex (Unicode) tested against the command, when the call runs one.
 * Regexes were validated when the config was loaded; one that still fails to compile asks for approval
 * (fail closed).
 */
export function approvalRuleFor(rules: readonly string[], subject: ApprovalSubject): string | null {
  const rank = { read: 0, write: 1, exec: 2, sudo: 3 } as const;
  for (const rule of rules) {
    switch (rule) {
      case 'destructive':
        if (subject.destructive) return rule;
        continue;
      case 'write':
      case 'exec':
      case 'sudo':
        if (rank[subject.tier] >= rank[rule]) return rule;
        continue;
      default:
        if (subject.command === undefined) continue;
        try {
          if (new RegExp(rule, 'u').test(subject.command)) return rule;
        } catch {
          return rule;
        }
    }
  }
  return null;
}

/** JSON with object keys sorted at every level, so that equal values always serialise alike. */
export function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
  if (value !== null && typeof value === 'object') {
    const entries = Object.entries(value as Record<string, unknown>)
      .filter(([, v]) => v !== undefined)
      .sort(([a], [b]) => (a < b ? -1 : 1)); // keys of one object are distinct
    return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonicalJson(v)}`).join(',')}}`;
  }
  return value === undefined ? 'null' : JSON.stringify(value);
}

/**
 * The digest an approval is bound to: sha256 (hex) of the canonical JSON of host, tool and every argument
 * except `approval_id`. Any change to what would run (a different command, path, content or host) changes it.
 */
export function callDigest(call: { host: string | null; tool: string; args: Readonly<Record<string, unknown>> }): string {
  const { approval_id: _ignored, ...args } = call.args;
  return createHash('sha256').update(canonicalJson({ host: call.host, tool: call.tool, args })).digest('hex');
}
