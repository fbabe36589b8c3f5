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
    (("bundle", "poetry.lock", "--no-such-option"), "no such option: --no-such-option"),
    (("install",), "missing argument 'BUNDLE'"),
    (("bundle", "poetry.lock", "--jobs", "many"), "'many'"),
    (("no-such-command",), "no such command 'no-such-command'"),
    (("bundle", "poetry.lock", "--timeout", "nan"), "nan is not a number of seconds"),
    (("download", "poetry.lock", "-d", "x", "--timeout", "inf"), "inf is not a number"),
    (("bundle", "poetry.lock", "--timeout", "-1"), "not in the range"),
    (("bundle", "poetry.lock", "--timeout", "0"), "not in the range"),
    (("bundle", "poetry.lock", "-o", ""), "'--output' / '-o': an empty path"),
    (("export", "poetry.lock", "-o", ""), "'--output' / '-o': an empty path"),
    (("download", "poetry.lock", "-d", ""), "'--dest' / '-d': an empty path"),
    (("lock", "requirements.in", "-o", ""), "'--output' / '-o': an empty path"),
])
def test_usage_errors_are_one_line_exit_2(args: tuple[str, ...], says: str,
                                          tmp_path) -> None:
    """One line like every other error, with where to read more; nothing is written."""
    done = run_cli(*args, cwd=tmp_path)
    assert done.returncode == 2, done.stderr
    line, = done.stderr.splitlines()
    command = args[0] if args[0] != "no-such-command" else ""
    assert line.startswith("wheelhouse-bundler: error: ") and says in line, line
    assert line.endswith(f"(try '{' '.join(['wheelhouse-bundler', command]).strip()} "
                         "--help')"), line
    assert list(tmp_path.iterdir()) == []


def test_help_shows_its_text_as_written() -> None:
    """No markup in help: `[tool.wheelhouse-bundler]` is text, not a style tag."""
    shown = " ".join(run_cli("bundle", "--help").stdout.split())
    assert "`targets` in [tool.wheelhouse-bundler] of the project's pyproject.toml" in shown
    for name in ("poetry.lock", "pylock.toml", "uv.lock", "Pipfile.lock", "pdm.lock",
                 "requirements.txt", "requirements.in", "`lock`", "project folder"):
        assert name in shown.split("Options:")[0], name  # in the LOCK argument's help


def test_version_is_an_option_not_a_second_command() -> None:
    assert run_cli("--version").stdout.strip() == __version__
    done = run_cli("version")
    assert done.returncode == 2 and "no such command 'version'" in done.stderr.lower()


COMMANDS = ("export", "bundle", "download", "verify", "inspect", "diff", "delta", "merge",
            "audit", "install", "rollback", "rehearse", "target-info", "lock", "publish")


def test_every_command_has_help_with_an_example() -> None:
    listed = run_cli("--help").stdout
    commands = listed[listed.index("Commands:"):]
    assert "..." not in commands  # every summary fits 80 columns, not cut by click
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
    return {m[1] for m in re.finditer(r"^  ([a-z][a-z-]*)\s{2,}\S", panel, re.M)}


def test_every_command_runs_as_its_own_process_somewhere_in_the_suite() -> None:
    """A guard on the suite itself: each command `--help` lists (so a new one too) is run
    through clirun by at least one test beyond this file, as an operator runs it."""
    listed = _listed_commands()
    assert listed == set(COMMANDS), listed
    sources = "\n".join(p.read_text() for p in Path(__file__).parent.glob("test_*.py")
                        if p.name != Path(__file__).name)
    called = set(re.findall(r"\b(?:run_cli|cli_offline)\(\s*\"([a-z-]+)\"", sources))
    assert set(COMMANDS) - called == set()
