// Operator-defined command templates: the model picks a template and fills validated parameters, never raw shell.
import { SshgateError } from '../errors.js';
import type { TemplateConfig } from '../config/schema.js';
import { shellQuote } from './shell-quote.js';
import type { Tier } from './tiers.js';

const PLACEHOLDER = /\{(\w+)\}/gu;

/** The names of the placeholders in a template command, in order of first appearance. */
export function templateParams(command: string): string[] {
  return [...new Set([...command.matchAll(PLACEHOLDER)].map((m) => String(m[1])))];
}

/** The tier a template needs (default exec: a template without a tier is as powerful as a command). */
export function templateTier(template: TemplateConfig): Tier {
  return template.tier ?? 'exec';
}

/** True when the template is offered on a host with this alias and these labels (`hosts` lists aliases or labels). */
export function templateOffered(template: TemplateConfig, alias: string, labels: readonly string[]): boolean {
  return template.hosts === undefined || template.hosts.some((h) => h === alias || labels.includes(h));
}

/**
 * Renders a template: every `{name}` becomes the value of parameter `name` as exactly one shell-quoted word.
 * Each value must match its regex as a whole (the regex is anchored here), contain no control characters,
 * and not start with `-` unless the template lists the parameter in `allow_dash` (an option injected into
 * `tail {file}` as `-f`... would change what the command does).
 * @throws SshgateError INVALID_INPUT naming the template and parameter.
 */
export function renderTemplate(name: string, template: TemplateConfig, params: Readonly<Record<string, string>>): string {
  const wanted = templateParams(template.command);
  for (const key of Object.keys(params)) {
    if (!wanted.includes(key)) {
      throw new SshgateError('INVALID_INPUT', `template ${name} has no parameter ${JSON.stringify(key)}; its parameters are: ${wanted.join(', ') || '(none)'}`);
    }
  }
  const values = new Map<string, string>();
  for (const param of wanted) {
    const value = params[param];
    if (value === undefined) throw new SshgateError('INVALID_INPUT', `template ${name}: parameter ${param} is required`);
    // eslint-disable-next-line no-control-regex -- refusing control characters is the point.
    if (/[\u0000-\u001f\u007f-\u009f]/u.test(value)) {
      throw new SshgateError('INVALID_INPUT', `template ${name}: parameter ${param} contains a control character`);
    }
    if (value.startsWith('-') && !(template.allow_dash ?? []).includes(param)) {
      throw new SshgateError('INVALID_INPUT', `template ${name}: parameter ${param} may not start with "-" (it would be read as an option)`);
    }
    const pattern = template.params?.[param];
    if (pattern === undefined) {
      throw new SshgateError('INVALID_INPUT', `template ${name}: parameter ${param} has no validation regex in the config (templates.${name}.params.${param}), so it is refused`);
    }
    if (!new RegExp(`^(?:${pattern})$`, 'u').test(value)) {
      throw new SshgateError('INVALID_INPUT', `template ${name}: parameter ${param} must match ${pattern}`, { details: { param, pattern } });
    }
    values.set(param, shellQuote(value));
  }
  return template.command.replace(PLACEHOLDER, (_m, key: string) => String(values.get(key)));
}
