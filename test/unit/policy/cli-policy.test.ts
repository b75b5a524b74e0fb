// The device-CLI command check: whole-line regexes, no shell grammar, no control characters.
import { describe, expect, it } from 'vitest';
import { checkCliCommand } from '../../../src/policy/cli-policy.js';

const rules = { allow: ['^show ', '^terminal length \\d+$', '^(enable|disable|exit|end)$'], deny: ['^show running-config', 'secret'] };

describe('checkCliCommand', () => {
  it.each([
    ['show ip interface brief | include up', 'a pipe, which is the device output filter, not a shell pipe'],
    ["show interfaces description | include it's", 'an apostrophe, which a bash parser would reject'],
    ['  show   version  ', 'extra whitespace, collapsed before the rules see it'],
    ['terminal length 0', 'an allow rule anchored at both ends'],
  ])('allows %j (%s)', (line) => {
    expect(checkCliCommand(line, rules).allowed).toBe(true);
  });

  it.each([
    ['show running-config', 'commands.deny[0]'],
    ['show run | include secret', 'commands.deny[1]'],
    ['configure terminal', 'commands.allow'],
    ['conf t', 'commands.allow'],
    ['show version\nreload', 'control_character'],
    ['show version\rreload', 'control_character'],
    ['show ver\t', 'control_character'],
    ['show version\u0003', 'control_character'],
    ['show \u202Eversion', 'control_character'],
    ['   ', 'empty_command'],
  ])('refuses %j by rule %s', (line, rule) => {
    const decision = checkCliCommand(line, rules);
    expect(decision.allowed).toBe(false);
    if (!decision.allowed) {
      expect(decision.rule).toBe(rule);
      expect(decision.message).toContain(`rule ${rule}`);
      expect(decision.command).not.toMatch(/[\n\r\t]/u);
    }
  });

  it('applies no rules but the built-in ones when the host has none', () => {
    expect(checkCliCommand('configure terminal', undefined).allowed).toBe(true);
    expect(checkCliCommand('reload\n', undefined).allowed).toBe(false);
  });

  it('honours a deny list without an allow list', () => {
    expect(checkCliCommand('reload', { deny: ['^reload'] }).allowed).toBe(false);
    expect(checkCliCommand('show clock', { deny: ['^reload'] }).allowed).toBe(true);
    expect(checkCliCommand('show clock', { allow: ['^show '] }).allowed).toBe(true);
  });

  it('returns the normalised line as one static command', () => {
    const decision = checkCliCommand(' show  clock ', undefined);
    expect(decision).toEqual({ allowed: true, commands: [{ words: ['show', 'clock'], assignments: [], redirects: [], text: ' show  clock ', isStatic: true }] });
  });

  it('refuses a line longer than max_length, counting UTF-8 bytes', () => {
    expect(checkCliCommand('x'.repeat(20_000), undefined)).toMatchObject({ allowed: false, rule: 'max_length' });
    expect(checkCliCommand('é'.repeat(6), { max_length: 10 })).toMatchObject({ allowed: false, rule: 'max_length' });
    expect(checkCliCommand('é'.repeat(5), { max_length: 10 }).allowed).toBe(true);
  });

  it('shortens a long refused line in the message', () => {
    const decision = checkCliCommand(`${'a'.repeat(300)}\n`, undefined);
    expect(decision.allowed).toBe(false);
    if (!decision.allowed) expect(decision.command).toMatch(/\.\.\.$/u);
  });

  it('reuses the compiled rules of the same rules object', () => {
    const same = { deny: ['^reload'] };
    expect(checkCliCommand('reload', same).allowed).toBe(false);
    expect(checkCliCommand('reload in 5', same).allowed).toBe(false);
  });
});
