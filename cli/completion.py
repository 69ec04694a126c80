"""`bastion completion bash|zsh|fish`: a shell completion script, generated from the CLI's
own argparse parser (so it always knows every sub-command, option and choice there is).

The parser is read once into a small tree (`CommandNode`: options, their kinds of value,
positionals, sub-commands), then written out by one renderer per shell. No library: the
argparse tree is all there is to know, and fish (which the usual generators leave out)
gets the same tree as bash and zsh.
"""

from __future__ import annotations

import argparse
import re
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace

HELP = """Print a shell completion script for bastion: sub-commands, options and their values.

  bash  source <(bastion completion bash)          # this shell, or for good:
        bastion completion bash > ~/.local/share/bash-completion/completions/bastion
  zsh   bastion completion zsh > "${fpath[1]}/_bastion"   # then restart zsh (compinit)
  fish  bastion completion fish > ~/.config/fish/completions/bastion.fish

The script completes sub-commands (`bastion au<TAB>` -> audit, auth), options, the
choices of an option (`--format <TAB>`, `--adapter <TAB>`) and file or directory names
where a path is expected. Regenerate it after an upgrade.

Exit codes: 0 the script was printed; 2 an unknown shell.
"""

SHELLS = ("bash", "zsh", "fish")
# Value kinds: what follows an option or stands as a positional.
FLAG, TEXT, FILE, DIRECTORY, CHOICE = "flag", "text", "file", "dir", "choice"
_DIRECTORY_METAVARS = frozenset({"DIR"})
_FILE_METAVARS = frozenset({"FILE", "PATH", "PEM", "FILE.csv", "OLD", "NEW"})


@dataclass(frozen=True, slots=True)
class Option:
    """One option of a command: its flags, what value it takes, its help line."""

    flags: tuple[str, ...]
    kind: str  # FLAG, TEXT, FILE, DIRECTORY or CHOICE
    choices: tuple[str, ...]
    help: str


@dataclass(frozen=True, slots=True)
class CommandNode:
    """A command (or the program itself, path ()) and what may follow it."""

    path: tuple[str, ...]
    help: str
    options: tuple[Option, ...]
    positional_kind: str | None  # None: no positional; else a value kind
    positional_choices: tuple[str, ...]
    subcommands: tuple[CommandNode, ...]

    def walk(self) -> Iterator[CommandNode]:
        yield self
        for sub in self.subcommands:
            yield from sub.walk()

    @property
    def name(self) -> str:
        return " ".join(self.path)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("shell", choices=SHELLS, help="the shell to complete in")


def run(args: argparse.Namespace) -> int:
    from bastion.cli.main import build_parser  # noqa: PLC0415  # main registers this module

    sys.stdout.write(render(args.shell, command_tree(build_parser())))
    return 0


def render(shell: str, tree: CommandNode) -> str:
    """The completion script for `shell`."""
    renderers: dict[str, Callable[[CommandNode], str]] = {
        "bash": render_bash,
        "zsh": render_zsh,
        "fish": render_fish,
    }
    return renderers[shell](tree)


# -- the tree -------------------------------------------------------------------------


def command_tree(parser: argparse.ArgumentParser, path: tuple[str, ...] = ()) -> CommandNode:
    """The completion tree of `parser` and its sub-parsers."""
    options: list[Option] = []
    positional: tuple[str | None, tuple[str, ...]] = (None, ())
    subcommands: list[CommandNode] = []
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            helps = {choice.dest: choice.help or "" for choice in action._choices_actions}
            for name, sub in action.choices.items():
                node = command_tree(sub, (*path, name))
                subcommands.append(_with_help(node, helps.get(name, "")))
        elif action.option_strings:
            kind, choices = _value_kind(action)
            options.append(Option(tuple(action.option_strings), kind, choices, _line(action.help)))
        elif positional[0] is None:  # the first positional decides: later ones are rare
            positional = _value_kind(action)
    return CommandNode(
        path=path,
        help=_line(parser.description),
        options=tuple(options),
        positional_kind=positional[0],
        positional_choices=positional[1],
        subcommands=tuple(subcommands),
    )


def _with_help(node: CommandNode, help_line: str) -> CommandNode:
    return replace(node, help=help_line or node.help)


def _value_kind(action: argparse.Action) -> tuple[str, tuple[str, ...]]:
    if action.nargs == 0:
        return FLAG, ()
    if action.choices is not None:
        return CHOICE, tuple(str(choice) for choice in action.choices)
    metavar = action.metavar if isinstance(action.metavar, str) else None
    if metavar in _DIRECTORY_METAVARS:
        return DIRECTORY, ()
    if metavar in _FILE_METAVARS:
        return FILE, ()
    return TEXT, ()


def _line(text: str | None) -> str:
    """The first line of a help text, argparse's `%%` unescaped (no help uses the
    `%(default)s` kind of placeholder)."""
    lines = (text or "").strip().splitlines()
    return lines[0].replace("%%", "%").rstrip(".") if lines else ""


# -- bash -----------------------------------------------------------------------------


def render_bash(tree: CommandNode) -> str:
    """A bash script: `complete -F _bastion bastion` over generated case tables."""
    nodes = list(tree.walk())
    subcommands = "\n".join(
        f'        "{node.name}") echo "{" ".join(s.path[-1] for s in node.subcommands)}" ;;'
        for node in nodes
        if node.subcommands
    )
    options = "\n".join(
        f'        "{node.name}") echo "{" ".join(f for o in node.options for f in o.flags)}" ;;'
        for node in nodes
    )
    values = "\n".join(
        f'        "{node.name}|{flag}") echo "{_bash_kind(option.kind, option.choices)}" ;;'
        for node in nodes
        for option in node.options
        if option.kind != FLAG
        for flag in option.flags
    )
    positionals = "\n".join(
        f'        "{node.name}") echo "{_bash_kind(kind, node.positional_choices)}" ;;'
        for node in nodes
        if (kind := node.positional_kind) is not None
    )
    return _BASH_TEMPLATE.format(
        subcommands=subcommands, options=options, values=values, positionals=positionals
    )


def _bash_kind(kind: str, choices: tuple[str, ...]) -> str:
    return f"{CHOICE} {' '.join(choices)}" if kind == CHOICE else kind


_BASH_TEMPLATE = """\
# bash completion for bastion, generated by `bastion completion bash`.
# Load it: source <(bastion completion bash)

_bastion_subcommands() {{
    case "$1" in
{subcommands}
    esac
}}

_bastion_options() {{
    case "$1" in
{options}
    esac
}}

# What follows an option: "text", "file", "dir" or "choice A B C"; nothing for a flag.
_bastion_value() {{
    case "$1|$2" in
{values}
    esac
}}

_bastion_positional() {{
    case "$1" in
{positionals}
    esac
}}

_bastion_reply() {{
    local kind="$1" cur="$2"
    case "$kind" in
        choice\\ *) COMPREPLY=($(compgen -W "${{kind#choice }}" -- "$cur")) ;;
        dir) compopt -o filenames 2>/dev/null; COMPREPLY=($(compgen -d -- "$cur")) ;;
        file) compopt -o filenames 2>/dev/null; COMPREPLY=($(compgen -f -- "$cur")) ;;
        *) COMPREPLY=() ;;
    esac
}}

_bastion() {{
    local cur="${{COMP_WORDS[COMP_CWORD]}}" prev="" path="" word i skip=""
    for ((i = 1; i < COMP_CWORD; i++)); do
        word="${{COMP_WORDS[i]}}"
        if [[ -n $skip ]]; then skip=""; continue; fi
        if [[ $word == -* ]]; then
            [[ $word != *=* && -n "$(_bastion_value "$path" "$word")" ]] && skip=1
            continue
        fi
        if [[ " $(_bastion_subcommands "$path") " == *" $word "* ]]; then
            path="${{path:+$path }}$word"
        fi
    done
    ((COMP_CWORD > 0)) && prev="${{COMP_WORDS[COMP_CWORD-1]}}"
    if [[ $prev == "=" && COMP_CWORD -gt 1 ]]; then
        prev="${{COMP_WORDS[COMP_CWORD-2]}}"
    fi
    local kind
    kind="$(_bastion_value "$path" "$prev")"
    if [[ -n $kind ]]; then
        _bastion_reply "$kind" "$cur"
        return 0
    fi
    if [[ $cur == -* ]]; then
        COMPREPLY=($(compgen -W "$(_bastion_options "$path")" -- "$cur"))
        return 0
    fi
    local subcommands
    subcommands="$(_bastion_subcommands "$path")"
    if [[ -n $subcommands ]]; then
        COMPREPLY=($(compgen -W "$subcommands" -- "$cur"))
        return 0
    fi
    _bastion_reply "$(_bastion_positional "$path")" "$cur"
}}

complete -F _bastion bastion
"""


# -- zsh ------------------------------------------------------------------------------


def render_zsh(tree: CommandNode) -> str:
    """A zsh script: one `_arguments` function per command, `_describe` for sub-commands."""
    functions = "\n".join(_zsh_function(node) for node in tree.walk())
    return (
        "#compdef bastion\n"
        "# zsh completion for bastion, generated by `bastion completion zsh`.\n"
        '# Install: bastion completion zsh > "${fpath[1]}/_bastion", then restart zsh.\n\n'
        f"{functions}\n"
        '_bastion "$@"\n'
    )


def _zsh_function(node: CommandNode) -> str:
    name = "_" + "_".join(("bastion", *(_identifier(p) for p in node.path)))
    specs = [_zsh_option(option) for option in node.options]
    if node.subcommands:
        described = " ".join(
            _quote_sh(f"{sub.path[-1]}:{_zsh_text(sub.help)}") for sub in node.subcommands
        )
        cases = "\n".join(
            f"                {sub.path[-1]}) {name}_{_identifier(sub.path[-1])} ;;"
            for sub in node.subcommands
        )
        return (
            f"{name}() {{\n"
            '    local curcontext="$curcontext" state line\n'
            f"    local -a subcommands=({described})\n"
            f"    _arguments -C {' '.join(specs)} ': :->command' '*:: :->argument'\n"
            "    case $state in\n"
            "        command) _describe -t commands 'bastion command' subcommands ;;\n"
            "        argument)\n"
            "            case $words[1] in\n"
            f"{cases}\n"
            "            esac ;;\n"
            "    esac\n"
            "}\n"
        )
    if node.positional_kind is not None:
        action = _zsh_action(node.positional_kind, node.positional_choices)
        specs.append(_quote_sh(f"*:argument:{action}"))
    return f"{name}() {{\n    _arguments -s {' '.join(specs)}\n}}\n"


def _zsh_option(option: Option) -> str:
    description = f"[{_zsh_text(option.help)}]"
    value = ""
    if option.kind != FLAG:
        value = f":{option.flags[-1].lstrip('-')}:{_zsh_action(option.kind, option.choices)}"
    if len(option.flags) == 1:
        return _quote_sh(f"{option.flags[0]}{description}{value}")
    exclusive = f"({' '.join(option.flags)})"
    return " ".join(_quote_sh(f"{exclusive}{flag}{description}{value}") for flag in option.flags)


def _zsh_action(kind: str, choices: tuple[str, ...]) -> str:
    return {
        CHOICE: f"({' '.join(choices)})",
        FILE: "_files",
        DIRECTORY: "_files -/",
    }.get(kind, " ")


def _zsh_text(text: str) -> str:
    """Help text safe inside an `_arguments` [description] and a `_describe` item."""
    return re.sub(r"[\[\]]", "", text).replace(":", " -")


# -- fish -----------------------------------------------------------------------------


def render_fish(tree: CommandNode) -> str:
    """A fish script: `complete -c bastion` lines, each guarded by the command the line
    is at (`__bastion_at 'audit verify'`), worked out from the words typed so far."""
    nodes = list(tree.walk())
    cases = "\n".join(
        f"        case {_quote_sh(node.name)}\n"
        f"            echo {' '.join(sub.path[-1] for sub in node.subcommands)}"
        for node in nodes
        if node.subcommands
    )
    lines = [_FISH_PRELUDE.format(cases=cases)]
    for node in nodes:
        here = _quote_sh(f"__bastion_at {_quote_sh(node.name)}")
        for sub in node.subcommands:
            lines.append(
                f"complete -c bastion -n {here} -a {sub.path[-1]} -d {_quote_sh(sub.help)}"
            )
        for option in node.options:
            lines.append(f"complete -c bastion -n {here} {_fish_option(option)}")
        if node.positional_kind is not None and not node.subcommands:
            lines.append(
                f"complete -c bastion -n {here} "
                + _fish_value(node.positional_kind, node.positional_choices)
            )
    return "\n".join(lines) + "\n"


_FISH_PRELUDE = """\
# fish completion for bastion, generated by `bastion completion fish`.
# Install: bastion completion fish > ~/.config/fish/completions/bastion.fish
complete -c bastion -e
complete -c bastion -f

function __bastion_subcommands
    switch $argv[1]
{cases}
    end
end

# The command the line is at: the sub-command words typed so far ("" for bastion itself).
function __bastion_path
    set -l path
    for token in (commandline -opc)[2..-1]
        if contains -- $token (__bastion_subcommands "$path" | string split ' ')
            set path $path $token
        end
    end
    echo "$path"
end

function __bastion_at
    test (__bastion_path) = "$argv[1]"
end
"""


def _fish_option(option: Option) -> str:
    parts = []
    for flag in option.flags:
        if flag.startswith("--"):
            parts.append(f"-l {flag[2:]}")
        else:
            parts.append(f"-s {flag[1:]}")
    if option.kind != FLAG:
        parts.append(_fish_value(option.kind, option.choices, option=True))
    parts.append(f"-d {_quote_sh(option.help)}")
    return " ".join(parts)


def _fish_value(kind: str, choices: tuple[str, ...], option: bool = False) -> str:
    if kind == CHOICE:
        return f"-x -a {_quote_sh(' '.join(choices))}"
    if kind == DIRECTORY:
        return "-x -a '(__fish_complete_directories)'"
    if kind == FILE:
        return "-r -F" if option else "-F"
    return "-x" if option else "-f"


# -- shared ---------------------------------------------------------------------------


def _identifier(word: str) -> str:
    return re.sub(r"[^A-Za-z0-9]", "_", word)


def _quote_sh(text: str) -> str:
    """`text` in single quotes for bash, zsh and fish alike (a backslash means something
    inside fish's single quotes and nothing inside the others': help lines need none)."""
    return "'" + text.replace("\\", "").replace("'", "'\\''") + "'"
