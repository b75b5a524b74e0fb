// Which calls need a human, and what an approval is bound to.
import { describe, expect, it } from 'vitest';
import { approvalRuleFor, callDigest, canonicalJson } from '../../../src/policy/approval.js';

describe('approvalRuleFor', () => {
  it.each([
    [['destructive'], { tier: 'write', destructive: true }, 'destructive'],
    [['destructive'], { tier: 'read', destructive: false }, null],
    [['write'], { tier: 'exec', destructive: false }, 'write'],
    [['write'], { tier: 'read', destructive: false }, null],
    [['exec'], { tier: 'write', destructive: true }, null],
    [['exec'], { tier: 'sudo', destructive: true }, 'exec'],
    [['sudo'], { tier: 'exec', destructive: true }, null],
    [['sudo'], { tier: 'sudo', destructive: true }, 'sudo'],
    [['^systemctl (restart|stop) '], { tier: 'exec', destructive: true, command: 'systemctl restart nginx' }, '^systemctl (restart|stop) '],
    [['^systemctl (restart|stop) '], { tier: 'exec', destructive: true, command: 'systemctl status nginx' }, null],
    [['^reboot'], { tier: 'write', destructive: true }, null],
    [['(unclosed'], { tier: 'exec', destructive: false, command: 'ls' }, '(unclosed'],
    [[], { tier: 'sudo', destructive: true, command: 'rm -rf /' }, null],
    [['exec', 'destructive'], { tier: 'write', destructive: true }, 'destructive'],
  ] as const)('rules %j on %j -> %s', (rules, subject, expected) => {
    expect(approvalRuleFor(rules, subject)).toBe(expected);
  });
});

describe('callDigest binds an approval to exactly one call', () => {
  const call = { host: 'web1', tool: 'ssh_exec', args: { host: 'web1', command: 'systemctl restart nginx', env: { A: '1', B: '2' } } };
  it('ignores approval_id and key order', () => {
    expect(callDigest({ ...call, args: { env: { B: '2', A: '1' }, command: 'systemctl restart nginx', host: 'web1', approval_id: 'x' } })).toBe(callDigest(call));
  });
  it.each([
    ['another command', { ...call, args: { ...call.args, command: 'systemctl restart nginx; rm -rf /' } }],
    ['another host', { ...call, host: 'web2' }],
    ['another tool', { ...call, tool: 'ssh_sudo_exec' }],
    ['another env value', { ...call, args: { ...call.args, env: { A: '1', B: '3' } } }],
  ])('changes with %s', (_name, other) => {
    expect(callDigest(other)).not.toBe(callDigest(call));
  });
  it('canonicalJson sorts keys, drops undefined and keeps arrays in order', () => {
    expect(canonicalJson({ b: [2, 1], a: undefined, c: null, d: 'x' })).toBe('{"b":[2,1],"c":null,"d":"x"}');
    expect(canonicalJson(undefined)).toBe('null');
  });
});
