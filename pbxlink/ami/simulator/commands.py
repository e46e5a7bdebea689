"""CLI commands the simulator answers through AMI `Command`, printed as Asterisk 22 prints them.

The client reads `manager show settings` (is timestampevents on?) and `manager show user`
(may we read the classes we need?) at startup, so those two follow manager.c's formats.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from pbxlink.ami.simulator.wire import authority_text

if TYPE_CHECKING:
    from pbxlink.ami.simulator.server import AmiSimulator

VERSION_LINE = "Asterisk 22.10.1 built by root @ vm on a x86_64 running Linux on 2026-11-23 11:48:50 UTC"


def command_output(sim: AmiSimulator, command: str) -> tuple[bool, str]:
    """(succeeded, CLI output) for one command line; unknown commands fail like ast_cli_command."""
    words = command.split()
    for prefix, render in _COMMANDS:
        if [w.lower() for w in words[: len(prefix)]] == list(prefix):
            return True, render(sim, words[len(prefix) :])
    text = " ".join(words)
    return False, f"No such command '{text}' (type 'core show help {text}' for other possible commands)\n"


def _version(sim: AmiSimulator, args: list[str]) -> str:
    return VERSION_LINE + "\n"


def _settings(sim: AmiSimulator, args: list[str]) -> str:
    def row(name: str, value: str) -> str:
        return f"  {name:<25.25}  {value:<15.55}\n"

    def yes(flag: bool) -> str:
        return "Yes" if flag else "No"

    return (
        "\nGlobal Settings:\n----------------\n"
        + row("Manager (AMI):", "Yes")
        + row("Web Manager (AMI/HTTP):", "No")
        + row("TCP Bindaddress:", f"{sim.host}:{sim.port}")
        + row("TLS Bindaddress:", "Disabled")
        + row("Allow multiple login:", "Yes")
        + row("Display connects:", "Yes")
        + row("Timestamp events:", yes(sim.timestampevents))
        + f"  {'Channel vars:':<25.25}  \n"
        + f"  {'Disabled events:':<25.25}  \n"
        + row("Debug:", "No")
        + "\n"
    )


def _user(sim: AmiSimulator, args: list[str]) -> str:
    if len(args) != 1 or args[0].lower() != sim.username.lower():
        return f"There is no manager called {' '.join(args)}\n"
    return (
        "\n"
        f"          username: {sim.username}\n"
        "            secret: <Set>\n"
        "               ACL: no\n"
        f"         read perm: {authority_text(sim.read_perms)}\n"
        f"        write perm: {authority_text(sim.write_perms)}\n"
        "   displayconnects: yes\n"
        "allowmultiplelogin: yes\n"
        "         Variables: \n"
    )


def _uptime(sim: AmiSimulator, args: list[str]) -> str:
    seconds = sim.uptime()
    text = f"{seconds // 60} minutes, {seconds % 60} seconds" if seconds >= 60 else f"{seconds} seconds"
    return f"System uptime: {text}\nLast reload: {text}\n"


_COMMANDS: tuple[tuple[tuple[str, ...], Callable[[AmiSimulator, list[str]], str]], ...] = (
    (("core", "show", "version"), _version),
    (("core", "show", "uptime"), _uptime),
    (("manager", "show", "settings"), _settings),
    (("manager", "show", "user"), _user),
)
