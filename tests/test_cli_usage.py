"""A mistyped command line is a user's mistake: usage and one error line, exit 2, no trace.

Run as a real process, because how typer reports usage errors (its own exceptions since it
stopped depending on click) is exactly what an in-process shortcut could hide.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from clirun import run_cli

from wheelhouse_bundler import __version__


@pytest.mark.parametrize(("args", "says"), [
    (("bundle", "poetry.lock", "--no-such-option"), "No such option: --no-such-option"),
    (("install",), "Missing argument"),
    (("bundle", "poetry.lock", "--jobs", "many"), "'many'"),
    (("no-such-command",), "No such command 'no-such-command'"),
])
def test_usage_errors_exit_2_with_one_error_line(args: tuple[str, ...], says: str) -> None:
    done = run_cli(*args)
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr and "internal error" not in done.stderr
    errors = [line for line in done.stderr.splitlines() if "Error" in line]
    assert len(errors) == 1 and says in errors[0], done.stderr


def test_version_option_and_command_agree() -> None:
    assert run_cli("--version").stdout.strip() == __version__
    assert run_cli("version").stdout.strip() == __version__


COMMANDS = ("export", "bundle", "download", "verify", "inspect", "diff", "audit", "install",
            "rollback", "rehearse", "target-info", "lock")


def test_every_command_has_help_with_an_example() -> None:
    listed = run_cli("--help").stdout
    for command in COMMANDS:
        assert command in listed
        done = run_cli(command, "--help")
        assert done.returncode == 0, done.stderr
        assert "Example" in done.stdout and f"wheelhouse-bundler {command} " in done.stdout, \
            command


def _listed_commands() -> set[str]:
    """The command names in `--help`'s Commands panel."""
    text = run_cli("--help").stdout
    panel = text[text.index("Commands"):]
    return {m[1] for m in re.finditer(r"^│ ([a-z][a-z-]*)\s{2,}", panel, re.M)}


def test_every_command_runs_as_its_own_process_somewhere_in_the_suite() -> None:
    """A guard on the suite itself: each command `--help` lists (so a new one too) is run
    through clirun by at least one test beyond this file, as an operator runs it."""
    listed = _listed_commands()
    assert listed == {*COMMANDS, "version"}, listed
    sources = "\n".join(p.read_text() for p in Path(__file__).parent.glob("test_*.py")
                        if p.name != Path(__file__).name)
    called = set(re.findall(r"\b(?:run_cli|cli_offline)\(\s*\"([a-z-]+)\"", sources))
    assert set(COMMANDS) - called == set()
