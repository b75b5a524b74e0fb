// Decides whether a line may be sent to a network device's CLI (hosts with `platform: cli`). A device has no shell
// grammar: `|` is its output filter and quotes mean nothing, so the host's command regexes are matched against the
// whole line instead of parsed simple commands. This is a speed bump, not a boundary: devices accept abbreviations
// (`conf t` for `configure terminal`), so the real boundary is the device account's privilege level.
import type { CommandRules } from '../config/schema.js';
import { DEFAULT_MAX_COMMAND_BYTES, type CommandDecision } from './command-policy.js';

// Security: every C0 control (tab and newline too: a newline would send a second, unchecked line and a tab asks the
// device to complete a word), DEL, C1 controls, line/paragraph separators, zero-width and bidi controls, lone surrogates.
// eslint-disable-next-line no-control-regex -- control characters are what this pattern is about.
const CLI_CONTROL_CHARACTER = /[\u0000-\u001F\u007F-\u009F\u200B-\u200F\u2028-\u202E\u2066-\u2069\uFEFF\uD800-\uDFFF]/u;

const compiled = new WeakMap<CommandRules, { allow: RegExp[] | undefined; deny: RegExp[] }>();

function compile(rules: CommandRules): { allow: RegExp[] | undefined; deny: RegExp[] } {
  let found = compiled.get(rules);
  if (found === undefined) {
    found = { allow: rules.allow?.map((source) => new RegExp(source, 'u')), deny: (rules.deny ?? []).map((source) => new RegExp(source, 'u')) };
    compiled.set(rules, found);
  }
  return found;
}

function preview(text: string): string {
  const shown = text.replace(new RegExp(CLI_CONTROL_CHARACTER.source, 'gu'), (char) => `\\u{${(char.codePointAt(0) as number).toString(16)}}`);
  return shown.length > 200 ? `${shown.slice(0, 200)}...` : shown;
}

function refusal(rule: string, line: string, reason: string): CommandDecision {
  return { allowed: false, rule, command: preview(line), message: `Command refused by rule ${rule} on \`${preview(line)}\`: ${reason}` };
}

/**
 * Checks one line for a device CLI against a host's command rules. Pure and synchronous.
 *
 * Order: 1. size (`commands.max_length`, default 16384 bytes), 2. control characters, 3. empty line, 4. `commands.deny`
 * (any match refuses), 5. `commands.allow` (when present, one must match). Rules see the line trimmed, with runs of
 * whitespace collapsed to one space, the way `show  run` and `show run` reach the device alike.
 * `commands.allow_constructs` does not apply (there is no shell grammar). The allowed decision carries the line as
 * one static "simple command".
 */
export function checkCliCommand(line: string, rules: CommandRules | undefined): CommandDecision {
  const maxBytes = rules?.max_length ?? DEFAULT_MAX_COMMAND_BYTES;
  if (line.length > maxBytes || Buffer.byteLength(line, 'utf8') > maxBytes) {
    return refusal('max_length', line, `the line is longer than ${maxBytes} bytes (commands.max_length).`);
  }
  const control = CLI_CONTROL_CHARACTER.exec(line);
  if (control !== null) {
    const code = (control[0].codePointAt(0) as number).toString(16).toUpperCase().padStart(4, '0');
    return refusal(
      'control_character',
      line,
      `the line contains the control character U+${code} at index ${control.index}; a device CLI takes one line of printable text per command (send several lines as several calls).`,
    );
  }
  const normalized = line.trim().replace(/\s+/gu, ' ');
  if (normalized === '') return refusal('empty_command', line, 'the command is empty.');
  if (rules !== undefined) {
    const { allow, deny } = compile(rules);
    for (const [index, re] of deny.entries()) {
      if (re.test(normalized)) return refusal(`commands.deny[${index}]`, line, `it matches the deny rule /${re.source}/ of this host.`);
    }
    if (allow !== undefined && !allow.some((re) => re.test(normalized))) {
      return refusal('commands.allow', line, `no commands.allow rule of this host matches \`${preview(normalized)}\`.`);
    }
  }
  return { allowed: true, commands: [{ words: normalized.split(' '), assignments: [], redirects: [], text: line, isStatic: true }] };
}
