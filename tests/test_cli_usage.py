"""A mistyped command line is a user's mistake: usage and one error line, exit 2, no trace.

Run as a real process, because how typer reports usage errors (its own exceptions since it
stopped depending on click) is exactly what an in-process shortcut could hide.
"""

from __future__ import annotations

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
