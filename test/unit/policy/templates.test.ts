// Operator templates: the model fills parameters, never shell syntax.
import { describe, expect, it } from 'vitest';
import { renderTemplate, templateOffered, templateParams, templateTier } from '../../../src/policy/templates.js';
import { shellQuote } from '../../../src/policy/shell-quote.js';

const tail = { command: 'tail -n {lines} {file}', params: { lines: '\\d{1,4}', file: '/var/log/[\\w./-]+' } };

describe('renderTemplate', () => {
  it('renders each value as one quoted word', () => {
    expect(renderTemplate('tail', tail, { lines: '100', file: '/var/log/syslog' })).toBe('tail -n 100 /var/log/syslog');
    expect(renderTemplate('grep', { command: 'grep -F {needle} /var/log/syslog', params: { needle: '.+' } }, { needle: "it's $(id)" })).toBe(
      "grep -F 'it'\\''s $(id)' /var/log/syslog",
    );
  });
  it.each([
    ['the regex is anchored: a suffix cannot ride along', { lines: '100; id', file: '/var/log/syslog' }, 'must match'],
    ['the regex is anchored: a prefix cannot ride along', { lines: '100', file: '/etc/passwd /var/log/syslog' }, 'must match'],
    ['option injection with a leading dash', { lines: '-f', file: '/var/log/syslog' }, 'may not start with "-"'],
    ['a NUL byte', { lines: '1', file: '/var/log/sys\u0000log' }, 'control character'],
    ['a C1 control', { lines: '1', file: '/var/log/\u009bsyslog' }, 'control character'],
    ['an unknown parameter', { lines: '1', file: '/var/log/x', extra: 'y' }, 'has no parameter'],
    ['a missing parameter', { lines: '1' }, 'is required'],
  ])('refuses %s', (_name, params, message) => {
    expect(() => renderTemplate('tail', tail, params)).toThrow(message);
  });
  it('allows a leading dash only where the template says so', () => {
    expect(renderTemplate('n', { command: 'echo {v}', params: { v: '-?\\d+' }, allow_dash: ['v'] }, { v: '-5' })).toBe('echo -5');
  });
  it('refuses a parameter the operator gave no regex for', () => {
    expect(() => renderTemplate('x', { command: 'ls {dir}' }, { dir: '/' })).toThrow('no validation regex');
  });
  it('lists parameters, defaults the tier to exec, and filters by alias or label', () => {
    expect(templateParams('a {x} {y} {x}')).toEqual(['x', 'y']);
    expect(templateParams('df -h')).toEqual([]);
    expect(renderTemplate('df', { command: 'df -h' }, {})).toBe('df -h');
    expect(() => renderTemplate('df', { command: 'df -h' }, { x: '1' })).toThrow('(none)');
    expect(templateTier({ command: 'x' })).toBe('exec');
    expect(templateTier({ command: 'x', tier: 'read' })).toBe('read');
    expect(templateOffered({ command: 'x' }, 'web1', [])).toBe(true);
    expect(templateOffered({ command: 'x', hosts: ['prod'] }, 'web1', ['prod'])).toBe(true);
    expect(templateOffered({ command: 'x', hosts: ['web1'] }, 'web1', [])).toBe(true);
    expect(templateOffered({ command: 'x', hosts: ['db'] }, 'web1', ['prod'])).toBe(false);
  });
});

describe('shellQuote', () => {
  it.each([
    ['plain', 'plain'],
    ['/var/log/syslog', '/var/log/syslog'],
    ['', "''"],
    ['a b', "'a b'"],
    ["it's", "'it'\\''s'"],
    ['$(id)', "'$(id)'"],
    ['`id`', "'`id`'"],
    ['a\nb', "'a\nb'"],
  ])('%j -> %s', (value, quoted) => {
    expect(shellQuote(value)).toBe(quoted);
  });
});
