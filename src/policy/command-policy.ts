// Decides whether a command string may run on a host: it is parsed with a bash grammar (mvdan/sh) and every simple
// command in it is checked against the host's rules, so quoting, escapes and separators cannot hide what runs.
// @ts-expect-error -- mvdan-sh ships no type declarations; the few node shapes used here are declared below.
import mvdanSh from 'mvdan-sh';
import type { CommandRules } from '../config/schema.js';
import { SshgateError } from '../errors.js';

/** Constructs refused by default; a host opts into one by naming it in `commands.allow_constructs`. */
export const CONSTRUCTS = [
  'command_substitution',
  'process_substitution',
  'eval',
  'exec',
  'source',
  'shell_code',
  'interpreter_code',
  'pipe_to_shell',
  'here_string_to_shell',
  'shell_stdin',
  'xargs',
  'find_exec',
  'launcher',
  'dynamic_command_name',
  'env_injection',
  'function_definition',
  'alias',
  'trap',
  'arithmetic',
  'indirect_expansion',
  'network_redirection',
] as const;

export type CommandConstruct = (typeof CONSTRUCTS)[number];

/** Why each construct is refused: it runs code, or chooses what runs, out of sight of the rules. */
export const CONSTRUCT_DESCRIPTIONS: Readonly<Record<CommandConstruct, string>> = {
  command_substitution: 'command substitution ($(...) or backticks) runs a command inside another word',
  process_substitution: 'process substitution (<(...) or >(...)) runs a command inside another word',
  eval: 'eval (or fc, enable -f, mapfile/readarray -C, bind -x, complete/compgen -C) runs a string as code',
  exec: 'exec replaces the shell with another command',
  source: 'source and . run the commands of a file',
  shell_code: 'a shell given code to run (sh -c, bash -c, ...) runs a string as code',
  interpreter_code: 'an interpreter given code (python -c, perl -e, node -e, an awk program calling system() or pipes, ...)',
  pipe_to_shell: 'a shell or interpreter reading its program from a pipe runs whatever the pipe carries',
  here_string_to_shell: 'a shell or interpreter reading its program from a here-string or here-document',
  shell_stdin: 'a shell or interpreter reading its program from standard input or a file redirection',
  xargs: 'xargs and parallel build commands from their input',
  find_exec: 'find -exec/-execdir/-ok/-okdir runs a command for each file',
  launcher: 'a launcher (env, nice, timeout, nohup, sudo, command, builtin, ...) runs another command given as arguments',
  dynamic_command_name: 'the command name is only known at run time (variables, globs, braces, tildes)',
  env_injection: 'an assignment to a variable that changes what programs run or load (PATH, LD_PRELOAD, BASH_ENV, PS4, ...)',
  function_definition: 'a function definition can shadow a command name',
  alias: 'an alias definition (or shopt expand_aliases) changes what a later command name runs',
  trap: 'trap runs a string as code when a signal or exit happens',
  arithmetic: 'an arithmetic context with variables, where bash evaluates array subscripts such as a[$(cmd)]',
  indirect_expansion: 'indirect expansion (${!x}, ${x@P}, declare -n) evaluates a value as a name or prompt',
  network_redirection: 'a redirection to /dev/tcp or /dev/udp opens a network connection',
};

/** Commands longer than this many UTF-8 bytes are refused before parsing, unless the host sets `max_length`. */
export const DEFAULT_MAX_COMMAND_BYTES = 16 * 1024;

/** One simple command as the rules saw it. */
export interface SimpleCommand {
  /** The command and its arguments: quotes removed, escapes resolved, `$'...'` decoded; a dynamic word keeps its source text. */
  words: string[];
  /** Prefix assignments (`NAME=value`), rendered like words. */
  assignments: string[];
  /** Redirections other than fd duplications and /dev/null, rendered without spaces (`>/etc/passwd`, `2>>log`, `<<EOF`). */
  redirects: string[];
  /** The source slice of the command. */
  text: string;
  /** True when no word, assignment or redirection target depends on an expansion. Allow rules only match static commands. */
  isStatic: boolean;
}

export type CommandDecision =
  | { allowed: true; commands: SimpleCommand[] }
  | {
      allowed: false;
      /** `construct:<name>`, `commands.deny[i]`, `commands.allow`, `control_character`, `max_length`, `parse_error` or `empty_command`. */
      rule: string;
      /** The simple command the rule fired on (the whole command for checks that run before parsing). */
      command: string;
      message: string;
    };

// ---------------------------------------------------------------------------------------------------------------
// The parser. mvdan/sh is the parser behind shfmt; mvdan-sh is its synchronous JavaScript build.

interface ShPos {
  Offset(): number;
}
interface ShNode {
  Pos(): ShPos;
  End(): ShPos;
}
interface ShLit extends ShNode {
  Value: string;
}
interface ShWord extends ShNode {
  Parts: ShNode[];
}
interface ShSglQuoted extends ShNode {
  Dollar: boolean;
  Value: string;
}
interface ShDblQuoted extends ShNode {
  Dollar: boolean;
  Parts: ShNode[];
}
interface ShStmts extends ShNode {
  Stmts: ShStmt[];
}
interface ShStmt extends ShNode {
  Cmd: ShNode | null;
  Redirs: ShRedirect[];
}
interface ShRedirect extends ShNode {
  Op: number;
  N: ShLit | null;
  Word: ShWord;
  Hdoc: ShWord | null;
}
interface ShAssign extends ShNode {
  Naked: boolean;
  Append: boolean;
  Name: ShLit | null;
  Index: ShNode | null;
  Value: ShWord | null;
  Array: { Elems: { Index: ShNode | null; Value: ShWord | null }[] } | null;
}
interface ShCallExpr extends ShNode {
  Assigns: ShAssign[];
  Args: ShWord[];
}
interface ShDeclClause extends ShNode {
  Variant: ShLit;
  Args: ShAssign[];
}
interface ShBinary extends ShNode {
  Op: number;
  X: ShNode;
  Y: ShNode;
}
interface ShUnary extends ShNode {
  Op: number;
  X: ShNode;
}
interface ShBinaryCmd extends ShNode {
  Op: number;
  X: ShStmt;
  Y: ShStmt;
}
interface ShIfClause extends ShNode {
  Cond: ShStmt[];
  Then: ShStmt[];
  Else: ShIfClause | null;
}
interface ShWhileClause extends ShNode {
  Cond: ShStmt[];
  Do: ShStmt[];
}
interface ShForClause extends ShNode {
  Loop: ShNode;
  Do: ShStmt[];
}
interface ShWordIter extends ShNode {
  Name: ShLit;
  Items: ShWord[];
}
interface ShCStyleLoop extends ShNode {
  Init: ShNode | null;
  Cond: ShNode | null;
  Post: ShNode | null;
}
interface ShCaseClause extends ShNode {
  Word: ShWord;
  Items: { Patterns: ShWord[]; Stmts: ShStmt[] }[];
}
interface ShParamExp extends ShNode {
  Excl: boolean;
  Names: number;
  Index: ShNode | null;
  Slice: { Offset: ShNode; Length: ShNode | null } | null;
  Repl: { Orig: ShWord; With: ShWord | null } | null;
  Exp: { Op: number; Word: ShWord | null } | null;
}
interface ShFile {
  Stmts: ShStmt[];
}
interface ShParser {
  Parse(text: string, name: string): ShFile;
}
interface ShSyntax {
  NewParser(...options: unknown[]): ShParser;
  KeepComments(enabled: boolean): unknown;
  Variant(variant: number): unknown;
  LangBash: number;
  NodeType(node: ShNode): string;
}

const SYNTAX = (mvdanSh as { syntax: ShSyntax }).syntax;
const PARSER = SYNTAX.NewParser(SYNTAX.KeepComments(false), SYNTAX.Variant(SYNTAX.LangBash));
const nodeType = (node: ShNode): string => SYNTAX.NodeType(node);

/** Operator numbers differ between parser versions, so they are read from the parser itself once. */
const OPS = probeOperators();

function probeOperators() {
  const first = (source: string): ShStmt => PARSER.Parse(source, '').Stmts[0] as ShStmt;
  const commandOf = (source: string): unknown => first(source).Cmd;
  const redirects = ['>', '>>', '<', '<>', '<&', '>&', '>|', '<<<', '&>', '&>>', '<<', '<<-'];
  const redirect = new Map(redirects.map((op) => [(first(`x ${op}y\ny\n`).Redirs[0] as ShRedirect).Op, op] as const));
  const testOp = (test: string): number => ((commandOf(`[[ ${test} ]]`) as ShUnary).X as ShUnary).Op;
  const word = (commandOf('x ${x@P}') as ShCallExpr).Args[1] as ShWord;
  return {
    redirect,
    pipe: new Set(['|', '|&'].map((op) => (commandOf(`a ${op} b`) as ShBinaryCmd).Op)),
    arithmeticTest: new Set(['-eq', '-ne', '-lt', '-le', '-gt', '-ge'].map((op) => testOp(`a ${op} b`))),
    nameTest: new Set(['-v', '-R'].map((op) => testOp(`${op} a`))),
    transform: ((word.Parts[0] as ShParamExp).Exp as { Op: number }).Op,
  };
}

// ---------------------------------------------------------------------------------------------------------------
// Vocabulary.

// Security: C0 controls but tab and newline, DEL, C1 controls, line/paragraph separators, zero-width and bidi
// controls (they make the text a human approves differ from what runs), and lone surrogates.
// eslint-disable-next-line no-control-regex
const CONTROL_CHARACTER = /[\u0000-\u0008\u000B-\u001F\u007F-\u009F\u200B-\u200F\u2028-\u202E\u2066-\u2069\uFEFF\uD800-\uDFFF]/u;

/** Variables that change which program runs, what it loads, or what the shell evaluates later. Not exhaustive. */
const INJECTION_VARIABLE =
  /^(?:LD_|DYLD_|GIT_|BASH|PYTHON|PERL|RUBY|NODE_|LUA_|JAVA_|_JAVA_|JDK_JAVA_)|^(?:PATH|ENV|HOME|LC_ALL|LC_CTYPE|LANG|CDPATH|SHELLOPTS|PS[0-4]|PROMPT_COMMAND|PAGER|MANPAGER|SYSTEMD_PAGER|SYSTEMD_EDITOR|EDITOR|VISUAL|FCEDIT|BROWSER|LESSOPEN|LESSCLOSE|SSH_ASKPASS|SUDO_ASKPASS|SUDO_EDITOR|GCONV_PATH|HOSTALIASES|EXINIT|VIMINIT|CLASSPATH|PHPRC|PHP_INI_SCAN_DIR|XDG_CONFIG_HOME|XDG_CONFIG_DIRS|ZDOTDIR|OPENSSL_CONF|TMPDIR)$/u;

/** A variable name followed by a subscript that expands something: bash evaluates it wherever it takes a name. */
/** A locale whose character set cannot change how bash splits the bytes it parses next. */
const LOCALE_VARIABLE = /^(?:LC_ALL|LC_CTYPE|LANG)$/u;
const SAFE_LOCALE = /^(?:C|POSIX|[\w@-]*\.(?:UTF-8|utf-?8))$/u;
const SUBSCRIPT_CODE = /[A-Za-z_]\w*\[[^\]]*[$`]/u;
const ARITHMETIC_LITERAL = /^(?:0[xX][\da-fA-F]+|\d+#[\w@]+|\d+)$/u;
const NETWORK_DEVICE = /^\/dev\/(?:tcp|udp)\//u;
const FD_TARGET = /^(?:\d+-?|-)$/u;
const STDIN_FILE = /^(?:-|\/dev\/(?:stdin|fd\/\d+)|\/proc\/[^/]+\/fd\/\d+)$/u;
/** The dynamic loader runs the program named in its arguments. */
const DYNAMIC_LOADER = /^ld(?:-linux[\w.-]*|-musl[\w.-]*)?\.so/u;
const ANSI_C_NUMERIC = /^(?:([0-7]{1,3})|x([\da-fA-F]{1,2})|u([\da-fA-F]{1,4})|U([\da-fA-F]{1,8}))/u;
const ANSI_C_ESCAPES = new Map([
  ['a', '\x07'],
  ['b', '\b'],
  ['e', '\x1b'],
  ['E', '\x1b'],
  ['f', '\f'],
  ['n', '\n'],
  ['r', '\r'],
  ['t', '\t'],
  ['v', '\v'],
  ['\\', '\\'],
  ["'", "'"],
  ['"', '"'],
  ['?', '?'],
]);

const ENCODER = new TextEncoder();
const DECODER = new TextDecoder();

// ---------------------------------------------------------------------------------------------------------------
// Checking.

type Stdin = 'inherited' | 'pipe' | 'here' | 'file';

const STDIN_CONSTRUCT: Readonly<Record<Stdin, CommandConstruct>> = {
  inherited: 'shell_stdin',
  file: 'shell_stdin',
  pipe: 'pipe_to_shell',
  here: 'here_string_to_shell',
};

interface CompiledRules {
  readonly allow: readonly RegExp[] | undefined;
  readonly deny: readonly RegExp[];
  readonly allowed: ReadonlySet<string>;
  readonly maxBytes: number;
}

interface Scope {
  readonly source: SourceText;
  readonly rules: CompiledRules;
  readonly commands: SimpleCommand[];
  /** The text named in a refusal: the simple (or compound) command being checked. */
  readonly current: string;
  /** Where the current command's standard input comes from. */
  readonly stdin: Stdin;
}

interface WordInfo {
  /** The decoded value when static, else the source text. */
  readonly value: string;
  readonly isStatic: boolean;
}

/** A refusal travels as an exception from wherever it fires to `checkCommand`. */
class Refusal extends Error {
  constructor(
    readonly rule: string,
    readonly command: string,
    message: string,
  ) {
    super(message);
  }
}

/** Slices the source by the parser's byte offsets (they are UTF-8 byte offsets, not UTF-16 indexes). */
class SourceText {
  constructor(
    private readonly text: string,
    private readonly bytes: Uint8Array,
  ) {}

  range(start: number, end: number): string {
    return this.bytes.length === this.text.length ? this.text.slice(start, end) : DECODER.decode(this.bytes.subarray(start, end));
  }

  slice(node: ShNode): string {
    return this.range(node.Pos().Offset(), node.End().Offset());
  }
}

const DEFAULT_RULES: CompiledRules = { allow: undefined, deny: [], allowed: new Set(), maxBytes: DEFAULT_MAX_COMMAND_BYTES };
const compiledRules = new WeakMap<CommandRules, CompiledRules>();

function compileRules(rules: CommandRules | undefined): CompiledRules {
  if (rules === undefined) return DEFAULT_RULES;
  let compiled = compiledRules.get(rules);
  if (compiled === undefined) {
    compiled = {
      allow: rules.allow?.map((source) => new RegExp(source, 'u')),
      deny: (rules.deny ?? []).map((source) => new RegExp(source, 'u')),
      allowed: new Set(rules.allow_constructs),
      maxBytes: rules.max_length ?? DEFAULT_MAX_COMMAND_BYTES,
    };
    compiledRules.set(rules, compiled);
  }
  return compiled;
}

/** Shows control characters as `\u{...}` so a refusal can be logged and displayed safely. */
function escapeControls(text: string): string {
  return text.replace(new RegExp(CONTROL_CHARACTER.source, 'gu'), (char) => `\\u{${(char.codePointAt(0) as number).toString(16)}}`);
}

function preview(text: string): string {
  return text.length > 200 ? `${text.slice(0, 200)}...` : text;
}

/**
 * Checks a command string against a host's command rules. Pure and synchronous.
 *
 * Order: 1. size (before anything reads the text), 2. control characters, 3. parse as bash (an error refuses),
 * 4. each simple command in source order: constructs, then `commands.deny`, then `commands.allow`.
 * Guarantees: the decision is `allowed` only if the whole string parsed and every simple command (including those
 * inside opted-in substitutions, functions and compound commands) passed; any failure inside the check refuses.
 */
export function checkCommand(command: string, rules: CommandRules | undefined): CommandDecision {
  const compiled = compileRules(rules);
  const bytes = command.length > compiled.maxBytes ? undefined : ENCODER.encode(command);
  if (bytes === undefined || bytes.length > compiled.maxBytes) {
    return refusal('max_length', preview(command), `the command is longer than ${compiled.maxBytes} bytes (commands.max_length); split it or use a template.`);
  }
  const control = CONTROL_CHARACTER.exec(command);
  if (control !== null) {
    const code = (control[0].codePointAt(0) as number).toString(16).toUpperCase().padStart(4, '0');
    return refusal('control_character', escapeControls(command), `the command contains the control character U+${code} at index ${control.index}; only tab and newline are accepted.`);
  }
  const scope: Scope = { source: new SourceText(command, bytes), rules: compiled, commands: [], current: command, stdin: 'inherited' };
  try {
    const file = PARSER.Parse(command, '');
    if (file.Stmts.length === 0) return refusal('empty_command', command, 'the command is empty.');
    walkStmts(file.Stmts, scope);
  } catch (err) {
    if (err instanceof Refusal) return refusal(err.rule, err.command, err.message);
    return refusal('parse_error', preview(command), `the command could not be parsed as bash: ${describeError(err)}.`);
  }
  return { allowed: true, commands: scope.commands };
}

/** Like {@link checkCommand}, but throws `SshgateError('COMMAND_DENIED')` (details: rule, command) on refusal. */
export function assertCommandAllowed(command: string, rules: CommandRules | undefined): SimpleCommand[] {
  const decision = checkCommand(command, rules);
  if (decision.allowed) return decision.commands;
  throw new SshgateError('COMMAND_DENIED', decision.message, { details: { rule: decision.rule, command: decision.command } });
}

function refusal(rule: string, command: string, reason: string): CommandDecision {
  return { allowed: false, rule, command, message: `Command refused by rule ${rule} on \`${preview(command)}\`: ${reason}` };
}

function describeError(err: unknown): string {
  // The parser throws Go errors (with an Error() method); a stack overflow on deep nesting throws a RangeError.
  const goError = err as { Error?: () => string };
  return typeof goError.Error === 'function' ? goError.Error() : String(err);
}

function useConstruct(scope: Scope, construct: CommandConstruct): void {
  if (scope.rules.allowed.has(construct)) return;
  throw new Refusal(
    `construct:${construct}`,
    scope.current,
    `${CONSTRUCT_DESCRIPTIONS[construct]}. Rewrite the command without it, or the operator can allow it for this host with commands.allow_constructs: [${construct}].`,
  );
}

/* v8 ignore start -- fail-closed guard: the bash parser produces no other node types. */
function unsupported(scope: Scope, type: string): never {
  throw new Refusal('parse_error', scope.current, `the command uses syntax the policy does not understand (${type}).`);
}
/* v8 ignore stop */

// ---------------------------------------------------------------------------------------------------------------
// Statements.

function walkStmts(stmts: readonly ShStmt[], scope: Scope): void {
  for (const stmt of stmts) walkStmt(stmt, scope);
}

function walkStmt(stmt: ShStmt, outer: Scope): void {
  const command = stmt.Cmd;
  const type = command === null ? 'redirections' : nodeType(command);
  if (command === null || type === 'CallExpr' || type === 'DeclClause') {
    checkSimpleCommand(stmt, type, outer);
    return;
  }
  // A compound command: its own redirections are checked as a command of their own, then its parts.
  const redirectScope: Scope = { ...outer, current: stmtText(stmt, outer.source, false) };
  const redirects = stmt.Redirs.map((redirect) => analyseRedirect(redirect, redirectScope));
  const visible = redirects.filter((redirect) => !redirect.isHarmless);
  if (visible.length > 0) {
    const pseudo: SimpleCommand = {
      words: [],
      assignments: [],
      redirects: visible.map((redirect) => redirect.rendering),
      text: redirectScope.current,
      isStatic: visible.every((redirect) => redirect.isStatic),
    };
    matchRules(pseudo, [], redirectScope);
    outer.commands.push(pseudo);
  }
  const stdin = redirects.reduce<Stdin>((current, redirect) => redirect.stdin ?? current, outer.stdin);
  walkCompound(command, type, { ...outer, stdin, current: outer.source.slice(command) });
}

/** The source of a statement without its `!`, `&` or `;`: the command (unless omitted) and its redirections. */
function stmtText(stmt: ShStmt, source: SourceText, withCommand: boolean): string {
  const nodes: ShNode[] = withCommand && stmt.Cmd !== null ? [stmt.Cmd, ...stmt.Redirs] : stmt.Redirs;
  const start = Math.min(...nodes.map((node) => node.Pos().Offset()));
  const end = Math.max(...nodes.map((node) => node.End().Offset()));
  return source.range(start, end);
}

function walkCompound(command: ShNode, type: string, scope: Scope): void {
  switch (type) {
    case 'Block':
    case 'Subshell':
      walkStmts((command as ShStmts).Stmts, scope);
      return;
    case 'BinaryCmd': {
      const binary = command as ShBinaryCmd;
      walkStmt(binary.X, scope);
      walkStmt(binary.Y, OPS.pipe.has(binary.Op) ? { ...scope, stdin: 'pipe' } : scope);
      return;
    }
    case 'IfClause': {
      const clause = command as ShIfClause;
      walkStmts(clause.Cond, scope);
      walkStmts(clause.Then, scope);
      if (clause.Else !== null) walkCompound(clause.Else, 'IfClause', scope);
      return;
    }
    case 'WhileClause': {
      const clause = command as ShWhileClause;
      walkStmts(clause.Cond, scope);
      walkStmts(clause.Do, scope);
      return;
    }
    case 'ForClause': {
      const clause = command as ShForClause;
      if (nodeType(clause.Loop) === 'WordIter') {
        const iter = clause.Loop as ShWordIter;
        checkVariableName(iter.Name.Value, scope);
        for (const item of iter.Items) analyseWord(item, scope);
      } else {
        const loop = clause.Loop as ShCStyleLoop;
        for (const expr of [loop.Init, loop.Cond, loop.Post]) if (expr !== null) checkArithmetic(expr, scope);
      }
      walkStmts(clause.Do, scope);
      return;
    }
    case 'CaseClause': {
      const clause = command as ShCaseClause;
      analyseWord(clause.Word, scope);
      for (const item of clause.Items) {
        for (const pattern of item.Patterns) analyseWord(pattern, scope);
        walkStmts(item.Stmts, scope);
      }
      return;
    }
    case 'FuncDecl':
      useConstruct(scope, 'function_definition');
      walkStmt((command as unknown as { Body: ShStmt }).Body, scope);
      return;
    case 'ArithmCmd':
      checkArithmetic((command as ShUnary).X, scope);
      return;
    case 'LetClause':
      useConstruct(scope, 'arithmetic');
      for (const expr of (command as unknown as { Exprs: ShNode[] }).Exprs) checkArithmetic(expr, scope);
      return;
    case 'TestClause':
      checkTest((command as ShUnary).X, scope);
      return;
    case 'TimeClause': {
      const inner = (command as unknown as { Stmt: ShStmt | null }).Stmt;
      if (inner !== null) walkStmt(inner, scope);
      return;
    }
    case 'CoprocClause': {
      const coproc = command as unknown as { Name: ShWord | null; Stmt: ShStmt };
      if (coproc.Name !== null) analyseWord(coproc.Name, scope);
      walkStmt(coproc.Stmt, { ...scope, stdin: 'pipe' });
      return;
    }
    /* v8 ignore next 2 */
    default:
      unsupported(scope, type);
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Simple commands.

function checkSimpleCommand(stmt: ShStmt, type: string, outer: Scope): void {
  const text = stmtText(stmt, outer.source, true);
  const scope: Scope = { ...outer, current: text };
  let assignments: WordInfo[] = [];
  let words: WordInfo[] = [];
  if (type === 'CallExpr') {
    const call = stmt.Cmd as ShCallExpr;
    assignments = call.Assigns.map((assign) => analyseAssign(assign, scope));
    words = call.Args.map((word) => analyseWord(word, scope));
  } else if (type === 'DeclClause') {
    const decl = stmt.Cmd as ShDeclClause;
    words = [{ value: decl.Variant.Value, isStatic: true }, ...decl.Args.map((arg) => analyseDeclArgument(arg, scope))];
  }
  const redirects = stmt.Redirs.map((redirect) => analyseRedirect(redirect, scope));
  const stdin = redirects.reduce<Stdin>((current, redirect) => redirect.stdin ?? current, outer.stdin);
  const launched = type === 'CallExpr' && words.length > 0 ? checkNamedCommand(words, 0, { ...scope, stdin }, false) : [];
  const visible = redirects.filter((redirect) => !redirect.isHarmless);
  const simple: SimpleCommand = {
    words: words.map((word) => word.value),
    assignments: assignments.map((assign) => assign.value),
    redirects: visible.map((redirect) => redirect.rendering),
    text,
    isStatic: [...words, ...assignments, ...visible].every((part) => part.isStatic),
  };
  matchRules(simple, launched, scope);
  outer.commands.push(simple);
}

/** 1. deny (any rendering matching refuses), 2. allow (when present, the full static rendering must match one). */
function matchRules(command: SimpleCommand, launched: readonly number[], scope: Scope): void {
  const { allow, deny } = scope.rules;
  const full = [...command.assignments, ...command.words, ...command.redirects].join(' ');
  const candidates = [full, [...command.words, ...command.redirects].join(' '), ...command.redirects];
  const name = command.words[0];
  if (name?.includes('/')) candidates.push([basename(name), ...command.words.slice(1), ...command.redirects].join(' '));
  // Suffixes of one joined string share its memory, so a long launcher line stays linear.
  const words = command.words.join(' ');
  const starts: number[] = [];
  let offset = 0;
  for (const word of command.words) {
    starts.push(offset);
    offset += word.length + 1;
  }
  for (const index of launched) candidates.push(words.slice(starts[index]));
  const denied = deny.findIndex((rule) => candidates.some((candidate) => rule.test(candidate)));
  if (denied !== -1) {
    throw new Refusal(
      `commands.deny[${denied}]`,
      command.text,
      `it matches the deny rule /${(deny[denied] as RegExp).source}/ of this host.`,
    );
  }
  if (allow === undefined) return;
  if (!command.isStatic) {
    throw new Refusal('commands.allow', command.text, 'this host has an allow list, and allow rules only match commands without expansions (variables, globs, braces, tildes, substitutions); write the values out.');
  }
  if (!allow.some((rule) => rule.test(full))) {
    throw new Refusal('commands.allow', command.text, `no commands.allow rule of this host matches \`${preview(full)}\`.`);
  }
}

function basename(path: string): string {
  return path.slice(path.lastIndexOf('/') + 1);
}

/** `value`, when known, lets locale variables through with a C or UTF-8 locale. */
function checkVariableName(name: string, scope: Scope, value?: WordInfo): void {
  const isSafeLocale = LOCALE_VARIABLE.test(name) && value?.isStatic === true && SAFE_LOCALE.test(value.value);
  if (INJECTION_VARIABLE.test(name) && !isSafeLocale) useConstruct(scope, 'env_injection');
}

function analyseAssign(assign: ShAssign, scope: Scope): WordInfo {
  const value = assign.Value === null ? { value: '', isStatic: true } : analyseWord(assign.Value, scope);
  checkVariableName((assign.Name as ShLit).Value, scope, value);
  if (assign.Index !== null) checkArithmetic(assign.Index, scope);
  if (assign.Array !== null) {
    for (const element of assign.Array.Elems) {
      if (element.Index !== null) checkArithmetic(element.Index, scope);
      if (element.Value !== null) analyseWord(element.Value, scope);
    }
  }
  if (value.isStatic && assign.Index === null && assign.Array === null) {
    return { value: `${(assign.Name as ShLit).Value}${assign.Append ? '+=' : '='}${value.value}`, isStatic: true };
  }
  return { value: scope.source.slice(assign), isStatic: false };
}

/** An argument of declare, local, export, readonly or typeset: options, names and assignments. */
function analyseDeclArgument(arg: ShAssign, scope: Scope): WordInfo {
  if (!arg.Naked || arg.Value === null) {
    if (arg.Naked) {
      checkVariableName((arg.Name as ShLit).Value, scope);
      if (arg.Index !== null) checkArithmetic(arg.Index, scope);
      return { value: scope.source.slice(arg), isStatic: arg.Index === null };
    }
    return analyseAssign(arg, scope);
  }
  const word = analyseWord(arg.Value, scope);
  checkDeclarationWord(word, scope);
  return word;
}

/** A word given to declare and friends, which bash reads as an option, a name or an assignment. */
function checkDeclarationWord(word: WordInfo, scope: Scope): void {
  // Security: a dynamic argument may expand to any assignment, `PATH=...` included.
  if (!word.isStatic) useConstruct(scope, 'env_injection');
  else if (/^[-+]/u.test(word.value)) {
    if (word.value.includes('n')) useConstruct(scope, 'indirect_expansion');
    if (word.value.includes('i')) useConstruct(scope, 'arithmetic');
  } else {
    checkVariableName(word.value.replace(/(?:\[|\+?=).*$/su, ''), scope);
    if (SUBSCRIPT_CODE.test(word.value)) useConstruct(scope, 'arithmetic');
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Commands that run other code.

/** Returns the index in `args` where the command it launches starts, when it launches one. */
type CommandCheck = (args: readonly WordInfo[], scope: Scope) => number | undefined;

interface InterpreterSpec {
  readonly construct: 'shell_code' | 'interpreter_code';
  /** Short options whose value is program text (-c, -e). */
  readonly code: RegExp;
  readonly codeLong: readonly string[];
  /** Short options that make it read the program from standard input (-s, -i). */
  readonly stdin: RegExp;
  /** Short options that take the next word as their argument when they end a cluster. */
  readonly argument: string;
  readonly argumentLong: readonly string[];
  /** Short options that name the program (python -m, php -f). */
  readonly program: RegExp;
  /** Operands that are subcommands taking code (deno eval). */
  readonly codeOperands: readonly string[];
}

function interpreter(construct: InterpreterSpec['construct'], options: Partial<Record<'code' | 'stdin' | 'argument' | 'program', string>> & Partial<Pick<InterpreterSpec, 'codeLong' | 'argumentLong' | 'codeOperands'>>): CommandCheck {
  const spec: InterpreterSpec = {
    construct,
    code: new RegExp(`[${options.code ?? ''}]`, 'u'),
    codeLong: options.codeLong ?? [],
    stdin: new RegExp(`[${options.stdin ?? ''}]`, 'u'),
    argument: options.argument ?? '',
    argumentLong: options.argumentLong ?? [],
    program: new RegExp(`[${options.program ?? ''}]`, 'u'),
    codeOperands: options.codeOperands ?? [],
  };
  return (args, scope) => {
    checkInterpreter(spec, args, scope);
    return undefined;
  };
}

/**
 * Scans the options of a shell or interpreter. Every letter of a cluster is looked at (so `-xc` and `-oc` count as
 * code); a dynamic word before the program is treated as code, since it may expand to `-c ...`.
 */
function checkInterpreter(spec: InterpreterSpec, args: readonly WordInfo[], scope: Scope): void {
  let hasProgram = false;
  let readsStdin = false;
  let optionsEnded = false;
  for (let index = 0; index < args.length && !hasProgram; index++) {
    const arg = args[index] as WordInfo;
    const value = arg.value;
    if (!arg.isStatic || spec.codeOperands.includes(value)) {
      useConstruct(scope, spec.construct);
      return;
    }
    if (!optionsEnded && value === '--') optionsEnded = true;
    else if (optionsEnded || !/^[-+]./u.test(value)) {
      // The program: a script file, unless it names standard input (`-`, /dev/stdin, /proc/self/fd/0).
      hasProgram = true;
      readsStdin ||= namesStdin(arg);
    } else if (value.startsWith('--')) {
      if (spec.codeLong.includes(value.split('=')[0] as string)) {
        useConstruct(scope, spec.construct);
        return;
      }
      if (spec.argumentLong.includes(value)) index++;
    } else {
      const letters = value.slice(1);
      if (spec.code.test(letters)) {
        useConstruct(scope, spec.construct);
        return;
      }
      readsStdin ||= spec.stdin.test(letters);
      hasProgram = spec.program.test(letters);
      if (hasProgram) readsStdin ||= namesStdin(args[index + 1]);
      else if (spec.argument.includes(letters.slice(-1))) index++;
    }
  }
  if (!hasProgram || readsStdin) useConstruct(scope, STDIN_CONSTRUCT[scope.stdin]);
}

/** True for a program file that is really standard input, or that is missing or only known at run time. */
function namesStdin(word: WordInfo | undefined): boolean {
  return word === undefined || !word.isStatic || STDIN_FILE.test(word.value);
}

const AWK_PROGRAM_FILE = /^-[fE]|^--(?:file|exec)\b/u;
const AWK_CODE_OPTION = /^-[eli]|^--(?:source|load|include)\b/u;
const AWK_ARGUMENT_OPTION = /^(?:-[Fv]|--field-separator|--assign)$/u;
/** What lets an awk program run commands or write files: system(), pipes, output redirection, @ directives. */
const AWK_COMMAND = /system|[|>@]/u;

function checkAwk(args: readonly WordInfo[], scope: Scope): undefined {
  let index = 0;
  for (; index < args.length; index++) {
    const arg = args[index] as WordInfo;
    if (!arg.isStatic || !/^-./u.test(arg.value)) break;
    if (arg.value === '--') {
      index++;
      break;
    }
    if (AWK_PROGRAM_FILE.test(arg.value)) {
      const attached = arg.value.replace(AWK_PROGRAM_FILE, '').replace(/^=/u, '');
      if (namesStdin(attached === '' ? args[index + 1] : { value: attached, isStatic: true })) useConstruct(scope, STDIN_CONSTRUCT[scope.stdin]);
      return undefined;
    }
    if (AWK_CODE_OPTION.test(arg.value)) {
      useConstruct(scope, 'interpreter_code');
      return undefined;
    }
    if (AWK_ARGUMENT_OPTION.test(arg.value)) index++;
  }
  const program = args[index];
  if (program !== undefined && (!program.isStatic || AWK_COMMAND.test(program.value))) useConstruct(scope, 'interpreter_code');
  return undefined;
}

const FIND_EXEC = new Set(['-exec', '-execdir', '-ok', '-okdir']);

function checkFind(args: readonly WordInfo[], scope: Scope): number | undefined {
  const at = args.findIndex((arg) => !arg.isStatic || FIND_EXEC.has(arg.value));
  if (at === -1) return undefined;
  useConstruct(scope, 'find_exec');
  return at + 1;
}

/** `env` with only options and assignments prints the environment; anything else runs a command. */
function envLaunches(args: readonly WordInfo[]): boolean {
  return args.some((arg) => !arg.isStatic || !/^(?:-i|--ignore-environment|-0|--null|-|-u.+|--unset=.*|[A-Za-z_]\w*=.*)$/su.test(arg.value));
}

/** Launches unless every argument is one of `options` (`sudo -l` lists, `nice` alone prints the niceness). */
function launchesUnlessOnly(options: readonly string[]): (args: readonly WordInfo[]) => boolean {
  return (args) => args.some((arg) => !arg.isStatic || !options.includes(arg.value));
}

/** `command -v NAME` and `command -V NAME` only describe; `command NAME` runs it. */
function commandLaunches(args: readonly WordInfo[]): boolean {
  for (const arg of args) {
    if (!arg.isStatic || !arg.value.startsWith('-')) return true;
    if (/[vV]/u.test(arg.value)) return false;
  }
  return false;
}

/** `trap`, `trap -l`, `trap -p [sig]`, `trap - sig`, `trap '' sig` and `trap sig` set no action. */
function trapSetsAction(args: readonly WordInfo[]): boolean {
  const first = args[0];
  return args.some((arg) => !arg.isStatic) || (first !== undefined && args.length > 1 && !['', '-', '-p', '-l'].includes(first.value));
}

function withConstruct(construct: CommandConstruct, launches?: (args: readonly WordInfo[]) => boolean): CommandCheck {
  return (args, scope) => {
    if (launches !== undefined && !launches(args)) return undefined;
    useConstruct(scope, construct);
    return 0;
  };
}

function withOption(construct: CommandConstruct, letters: string): CommandCheck {
  const option = new RegExp(`^-[^-]*[${letters}]`, 'u');
  return withConstruct(construct, (args) => args.some((arg) => !arg.isStatic || option.test(arg.value)));
}

/**
 * Builtins that take variable names: a subscript in a name is evaluated (so `read 'a[$(id)]'` runs id), and with
 * `assigns` the name is assigned (so `read PATH` counts as injection). `dynamicNames`: every dynamic argument may
 * be a name; otherwise only the word after a name flag (`printf -v`, `test -v`, `wait -p`) is.
 */
function namesCheck(assigns: boolean, dynamicNames: boolean, next?: CommandCheck): CommandCheck {
  return (args, scope) => {
    let previous = '';
    for (const arg of args) {
      if (arg.isStatic) {
        if (assigns) checkVariableName(arg.value.replace(/\[.*$/su, ''), scope);
        if (SUBSCRIPT_CODE.test(arg.value)) useConstruct(scope, 'arithmetic');
      } else if (dynamicNames || /^-[vpR]$/u.test(previous)) useConstruct(scope, 'arithmetic');
      previous = arg.value;
    }
    return next?.(args, scope);
  };
}

const SHELL = interpreter('shell_code', { code: 'cC', stdin: 'si', argument: 'oO', argumentLong: ['--rcfile', '--init-file'], codeLong: ['--command'] });
const NODE = interpreter('interpreter_code', {
  code: 'ep',
  stdin: 'i',
  argument: 'rC',
  codeLong: ['--eval', '--print', '--import', '--loader', '--experimental-loader', '--interactive'],
  argumentLong: ['--require', '--conditions', '--input-type', '--title'],
});
const CODE_E = interpreter('interpreter_code', { code: 'e' });
const DECLARATION: CommandCheck = (args, scope) => {
  for (const arg of args) checkDeclarationWord(arg, scope);
  return undefined;
};
const LAUNCHER = withConstruct('launcher');

const COMMAND_CHECKS = new Map<string, CommandCheck>([
  ['eval', withConstruct('eval')],
  ['fc', withConstruct('eval')],
  ['enable', withOption('eval', 'f')],
  ['mapfile', namesCheck(true, true, withOption('eval', 'C'))],
  ['readarray', namesCheck(true, true, withOption('eval', 'C'))],
  // -W words are expanded (command substitutions included), -C runs a command, -F calls a function.
  ['complete', withOption('eval', 'CWF')],
  ['compgen', withOption('eval', 'CWF')],
  ['bind', withOption('eval', 'x')],
  ['exec', withConstruct('exec')],
  ['source', withConstruct('source')],
  ['.', withConstruct('source')],
  ['trap', withConstruct('trap', trapSetsAction)],
  ['alias', withConstruct('alias', (args) => args.some((arg) => !arg.isStatic || arg.value.includes('=')))],
  ['shopt', withConstruct('alias', (args) => args.some((arg) => !arg.isStatic || arg.value === 'expand_aliases'))],
  ['hash', withOption('env_injection', 'p')],
  // set -k (keyword) turns `NAME=value` arguments anywhere on a line into environment assignments.
  ['set', withConstruct('env_injection', (args) => args.some((arg) => !arg.isStatic || /^-[^-]*k/u.test(arg.value) || arg.value === 'keyword'))],
  ['read', namesCheck(true, true)],
  ['getopts', namesCheck(true, true)],
  ['unset', namesCheck(false, true)],
  ['printf', namesCheck(true, false)],
  ['wait', namesCheck(true, false)],
  ['test', namesCheck(false, false)],
  ['[', namesCheck(false, false)],
  // Quoted or escaped (`\export`), these are ordinary commands to the parser but still the builtins to bash.
  ...['declare', 'typeset', 'local', 'export', 'readonly'].map((name) => [name, DECLARATION] as const),
  ['let', withConstruct('arithmetic')],
  ['command', withConstruct('launcher', commandLaunches)],
  ['env', withConstruct('launcher', envLaunches)],
  ['nice', withConstruct('launcher', launchesUnlessOnly([]))],
  ['sudo', withConstruct('launcher', launchesUnlessOnly(['-l', '-ll', '-n', '-nl', '-v', '-k', '-K', '-V', '-h', '--list', '--non-interactive', '--validate', '--version', '--help']))],
  ['crontab', withConstruct('launcher', (args) => args.some((arg) => !arg.isStatic) || !args.some((arg) => arg.value === '-l'))],
  ['xargs', withConstruct('xargs')],
  ['parallel', withConstruct('xargs')],
  ['find', checkFind],
  ['awk', checkAwk],
  ['gawk', checkAwk],
  ['mawk', checkAwk],
  ['nawk', checkAwk],
  ['python', interpreter('interpreter_code', { code: 'c', stdin: 'i', argument: 'WXQ', program: 'm' })],
  ['pypy', interpreter('interpreter_code', { code: 'c', stdin: 'i', argument: 'WXQ', program: 'm' })],
  // -M, -m and -d take a module name that perl pastes into code (`-M'strict;system q(id)'`).
  ['perl', interpreter('interpreter_code', { code: 'eEMmd' })],
  ['ruby', interpreter('interpreter_code', { code: 'e', argument: 'rICE' })],
  ['node', NODE],
  ['nodejs', NODE],
  ['bun', NODE],
  ['deno', interpreter('interpreter_code', { code: 'e', codeLong: ['--eval'], codeOperands: ['eval', 'repl'] })],
  ['php', interpreter('interpreter_code', { code: 'rRBE', stdin: 'a', argument: 'cdzt', program: 'f' })],
  ['lua', interpreter('interpreter_code', { code: 'e', argument: 'l' })],
  ['luajit', interpreter('interpreter_code', { code: 'e', argument: 'l' })],
  ['julia', interpreter('interpreter_code', { code: 'eE', codeLong: ['--eval', '--print'] })],
  ['expect', interpreter('interpreter_code', { code: 'c', program: 'f' })],
  ['Rscript', CODE_E],
  ['R', CODE_E],
  ['groovy', CODE_E],
  ['scala', CODE_E],
  ['osascript', CODE_E],
  ...['tclsh', 'wish', 'irb', 'jshell'].map((name) => [name, interpreter('interpreter_code', {})] as const),
  // PowerShell takes -Command, -EncodedCommand and their prefixes (-c, -e, -ec) from a single dash.
  ...['pwsh', 'powershell'].map((name) => [name, interpreter('shell_code', { code: 'cCeE', program: 'fF' })] as const),
  ...['sh', 'bash', 'dash', 'ash', 'zsh', 'ksh', 'mksh', 'pdksh', 'oksh', 'lksh', 'yash', 'posh', 'rbash', 'csh', 'tcsh', 'fish', 'elvish', 'nu', 'xonsh'].map(
    (name) => [name, SHELL] as const,
  ),
  ...[
    'builtin', 'doas', 'su', 'runuser', 'pkexec', 'sg', 'newgrp', 'nohup', 'timeout', 'setsid', 'setpriv', 'stdbuf',
    'ionice', 'taskset', 'chrt', 'numactl', 'prlimit', 'flock', 'watch', 'strace', 'ltrace', 'time', 'chroot', 'unshare',
    'nsenter', 'systemd-run', 'script', 'unbuffer', 'busybox', 'toybox', 'catchsegv', 'valgrind', 'gdb', 'ssh', 'sshpass',
    'rsh', 'tmux', 'screen', 'at', 'batch', 'firejail', 'bwrap', 'fakeroot', 'faketime', 'torsocks', 'proxychains',
    'proxychains4', 'runcon', 'cgexec', 'daemonize', 'start-stop-daemon', 'dbus-run-session', 'xvfb-run',
    'setarch', 'linux32', 'linux64', 'capsh', 'rlwrap', 'ifne', 'chronic', 'eatmydata', 'cpulimit', 'trickle', 'fakechroot',
    'proot', 'schroot', 'npx', 'bunx', 'pnpx', 'uvx',
  ].map((name) => [name, LAUNCHER] as const),
]);

/**
 * Checks what the command named by `words[start]` does with its arguments. When it launches another command and the
 * host allows that, every later word is checked as a possible command name too (`timeout 5 bash -c ...`), and the
 * returned indexes give deny rules the launched command to match.
 */
function checkNamedCommand(words: readonly WordInfo[], start: number, scope: Scope, nested: boolean): number[] {
  const first = words[start] as WordInfo;
  if (!first.isStatic) {
    useConstruct(scope, 'dynamic_command_name');
    return [];
  }
  // Strip a leading path (`/usr/bin/python3`) and a version (`python3.12`, `perl5.36`).
  const name = basename(first.value);
  const check = COMMAND_CHECKS.get(name) ?? COMMAND_CHECKS.get(name.replace(/[\d.]+$/u, '')) ?? (DYNAMIC_LOADER.test(name) ? LAUNCHER : undefined);
  if (check === undefined) return [];
  const launchedAt = check(words.slice(start + 1), scope);
  if (launchedAt === undefined || nested) return [];
  const launched: number[] = [];
  for (let index = start + 1 + launchedAt; index < words.length; index++) {
    checkNamedCommand(words, index, scope, true);
    launched.push(index);
  }
  return launched;
}

// ---------------------------------------------------------------------------------------------------------------
// Words.

interface Pieces {
  readonly chars: string[];
  /** Whether each character was quoted or escaped, and so is not subject to globbing, brace or tilde expansion. */
  readonly quoted: boolean[];
  isDynamic: boolean;
}

function analyseWord(word: ShWord, scope: Scope): WordInfo {
  const pieces: Pieces = { chars: [], quoted: [], isDynamic: false };
  for (const part of word.Parts) addPart(part, false, pieces, scope);
  if (pieces.isDynamic || expandsUnquoted(pieces)) return { value: scope.source.slice(word), isStatic: false };
  return { value: pieces.chars.join(''), isStatic: true };
}

function push(pieces: Pieces, text: string, quoted: boolean): void {
  for (const char of text) {
    pieces.chars.push(char);
    pieces.quoted.push(quoted);
  }
}

function addPart(part: ShNode, inDoubleQuotes: boolean, pieces: Pieces, scope: Scope): void {
  const type = nodeType(part);
  switch (type) {
    case 'Lit':
      addLiteral((part as ShLit).Value, inDoubleQuotes, pieces);
      return;
    case 'SglQuoted': {
      const quoted = part as ShSglQuoted;
      const value = quoted.Dollar ? decodeAnsiC(quoted.Value) : quoted.Value;
      if (value === undefined) pieces.isDynamic = true;
      else push(pieces, value, true);
      return;
    }
    case 'DblQuoted': {
      const quoted = part as ShDblQuoted;
      // $"..." is translated through the locale's message catalogue.
      pieces.isDynamic ||= quoted.Dollar;
      for (const inner of quoted.Parts) addPart(inner, true, pieces, scope);
      return;
    }
    case 'ParamExp':
      pieces.isDynamic = true;
      checkParamExp(part as ShParamExp, scope);
      return;
    case 'CmdSubst':
      pieces.isDynamic = true;
      useConstruct(scope, 'command_substitution');
      walkStmts((part as ShStmts).Stmts, scope);
      return;
    case 'ArithmExp':
      pieces.isDynamic = true;
      checkArithmetic((part as ShUnary).X, scope);
      return;
    case 'ProcSubst':
      pieces.isDynamic = true;
      useConstruct(scope, 'process_substitution');
      walkStmts((part as ShStmts).Stmts, { ...scope, stdin: 'pipe' });
      return;
    case 'ExtGlob':
      pieces.isDynamic = true;
      return;
    /* v8 ignore next 2 */
    default:
      unsupported(scope, type);
  }
}

/** Resolves backslashes: unquoted, `\x` is x; inside double quotes only `\$ \` \" \\` are escapes. */
function addLiteral(raw: string, inDoubleQuotes: boolean, pieces: Pieces): void {
  for (let index = 0; index < raw.length; index++) {
    const char = raw.charAt(index);
    const next = raw.charAt(index + 1);
    if (char !== '\\') push(pieces, char, inDoubleQuotes);
    else if (next === '' || (inDoubleQuotes && !'$`"\\'.includes(next))) push(pieces, char, true);
    else {
      push(pieces, next, true);
      index++;
    }
  }
}

/**
 * Decodes the body of `$'...'`. Returns undefined when bash's result is not certain: a NUL (bash cuts the string
 * there), a byte or code point outside ASCII (depends on the locale), or `\c` control escapes.
 */
function decodeAnsiC(raw: string): string | undefined {
  let out = '';
  let index = 0;
  while (index < raw.length) {
    const char = raw.charAt(index);
    if (char !== '\\') {
      out += char;
      index++;
      continue;
    }
    const rest = raw.slice(index + 1);
    const numeric = ANSI_C_NUMERIC.exec(rest);
    if (numeric !== null) {
      // Groups that did not take part are undefined at run time, whatever RegExpExecArray says.
      const groups: (string | undefined)[] = numeric.slice(1);
      const [octal, ...hex] = groups;
      const code = octal === undefined ? parseInt(hex.find((digits) => digits !== undefined) as string, 16) : parseInt(octal, 8) & 0xff;
      if (code === 0 || code >= 0x80) return undefined;
      out += String.fromCharCode(code);
      index += 1 + numeric[0].length;
      continue;
    }
    const escape = rest.charAt(0);
    if (escape === 'c') return undefined;
    // An unknown escape stays as written, backslash included.
    out += ANSI_C_ESCAPES.get(escape) ?? `\\${escape}`;
    index += 2;
  }
  return out;
}

/** Globs (`* ? [...]`), brace expansion (`{a,b}`, `{1..3}`) and tildes (`~`, `x=~`, `a:~`) on unquoted characters. */
function expandsUnquoted(pieces: Pieces): boolean {
  const { chars, quoted } = pieces;
  let braceOpen = false;
  let braceSeparator = false;
  for (let index = 0; index < chars.length; index++) {
    if (quoted[index] === true) continue;
    const char = chars[index];
    const before = index === 0 ? '' : (chars[index - 1] as string);
    if (char === '*' || char === '?' || (char === '[' && chars.includes(']', index + 1))) return true;
    if (char === '~' && ['', '=', ':'].includes(before) && quoted[index - 1] !== true) return true;
    if (char === '{') braceOpen = true;
    if (braceOpen && (char === ',' || (char === '.' && before === '.' && quoted[index - 1] !== true))) braceSeparator = true;
    if (char === '}' && braceSeparator) return true;
  }
  return false;
}

function checkParamExp(expansion: ShParamExp, scope: Scope): void {
  const allIndexes = expansion.Index !== null && ['@', '*'].includes(scope.source.slice(expansion.Index));
  // ${!x} and ${!a[0]} dereference; ${!prefix*} and ${!a[@]} only list names or keys.
  if (expansion.Excl && expansion.Names === 0 && !allIndexes) useConstruct(scope, 'indirect_expansion');
  if (expansion.Exp !== null) {
    const word = expansion.Exp.Word === null ? undefined : analyseWord(expansion.Exp.Word, scope);
    // ${x@P} expands the value like a prompt, command substitutions included.
    if (expansion.Exp.Op === OPS.transform && (word?.isStatic !== true || word.value.includes('P'))) useConstruct(scope, 'indirect_expansion');
  }
  if (expansion.Repl !== null) {
    analyseWord(expansion.Repl.Orig, scope);
    if (expansion.Repl.With !== null) analyseWord(expansion.Repl.With, scope);
  }
  if (expansion.Index !== null && !allIndexes) checkArithmetic(expansion.Index, scope);
  if (expansion.Slice !== null) {
    checkArithmetic(expansion.Slice.Offset, scope);
    if (expansion.Slice.Length !== null) checkArithmetic(expansion.Slice.Length, scope);
  }
}

/**
 * Arithmetic evaluates the value of every variable it names as another expression, and array subscripts in it run
 * command substitutions (`x='a[$(id)]'; echo $((x))` runs id), so only literal numbers pass.
 */
function checkArithmetic(expr: ShNode, scope: Scope): void {
  const type = nodeType(expr);
  switch (type) {
    case 'BinaryArithm':
      checkArithmetic((expr as ShBinary).X, scope);
      checkArithmetic((expr as ShBinary).Y, scope);
      return;
    case 'UnaryArithm':
    case 'ParenArithm':
      checkArithmetic((expr as ShUnary).X, scope);
      return;
    case 'Word': {
      const word = analyseWord(expr as ShWord, scope);
      if (!word.isStatic || !ARITHMETIC_LITERAL.test(word.value)) useConstruct(scope, 'arithmetic');
      return;
    }
    /* v8 ignore next 2 */
    default:
      unsupported(scope, type);
  }
}

/** Walks a `[[ ... ]]` expression; returns the operand when `expr` is a word. */
function checkTest(expr: ShNode, scope: Scope): WordInfo | undefined {
  const type = nodeType(expr);
  switch (type) {
    case 'Word':
      return analyseWord(expr as ShWord, scope);
    case 'BinaryTest': {
      const test = expr as ShBinary;
      const operands = [checkTest(test.X, scope), checkTest(test.Y, scope)];
      // Security: -eq and friends evaluate both sides as arithmetic.
      if (OPS.arithmeticTest.has(test.Op) && !operands.every((operand) => operand?.isStatic === true && ARITHMETIC_LITERAL.test(operand.value))) {
        useConstruct(scope, 'arithmetic');
      }
      return undefined;
    }
    case 'UnaryTest': {
      const test = expr as ShUnary;
      const operand = checkTest(test.X, scope);
      // Security: -v and -R take a variable name, and evaluate its subscript.
      if (OPS.nameTest.has(test.Op) && (operand?.isStatic !== true || SUBSCRIPT_CODE.test(operand.value))) useConstruct(scope, 'arithmetic');
      return undefined;
    }
    case 'ParenTest':
      checkTest((expr as ShUnary).X, scope);
      return undefined;
    /* v8 ignore next 2 */
    default:
      return unsupported(scope, type);
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Redirections.

interface RedirectInfo {
  readonly rendering: string;
  readonly isStatic: boolean;
  /** fd duplications and /dev/null neither read nor write anything the rules care about. */
  readonly isHarmless: boolean;
  /** Set when the redirection replaces standard input. */
  readonly stdin: Stdin | undefined;
}

function analyseRedirect(redirect: ShRedirect, scope: Scope): RedirectInfo {
  const op = OPS.redirect.get(redirect.Op) as string;
  const fd = redirect.N?.Value ?? '';
  const target = analyseWord(redirect.Word, scope);
  let bodyIsStatic = true;
  if (redirect.Hdoc !== null) {
    // The body of an unquoted here-document expands like a double-quoted string.
    const body: Pieces = { chars: [], quoted: [], isDynamic: false };
    for (const part of redirect.Hdoc.Parts) addPart(part, true, body, scope);
    bodyIsStatic = !body.isDynamic;
  }
  if (target.isStatic && NETWORK_DEVICE.test(target.value)) useConstruct(scope, 'network_redirection');
  const isHere = op.startsWith('<<');
  const readsStdin = (fd === '' || fd === '0') && op.startsWith('<');
  return {
    rendering: `${fd}${op}${target.value}`,
    isStatic: target.isStatic && bodyIsStatic,
    isHarmless: !isHere && target.isStatic && (target.value === '/dev/null' || (op.endsWith('&') && FD_TARGET.test(target.value))),
    stdin: readsStdin ? (isHere ? 'here' : 'file') : undefined,
  };
}
