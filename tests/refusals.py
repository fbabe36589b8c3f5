"""One check for every lock reader: a package the lock holds but cannot install (a git
checkout, a local folder, a file without a hash) is refused on the targets that need it,
in select's table, and nowhere else."""

from __future__ import annotations

from pathlib import Path

from wheelhouse_bundler.cli import main

NOWHERE = "http://127.0.0.1:9/simple/"  # export needs no index; a request would fail


def export_refused(path: Path, target: str, capsys, *args: object, index: str = NOWHERE
                   ) -> str:
    """Export of `path` for `target` ends in exit 2 with the table naming the lock, no
    traceback and nothing written; returns stderr for the test to check the line."""
    out = path.parent / "refused" / "out.txt"
    argv = ["export", path, "-t", target, "--index-url", index, "-o", out, *args]
    assert main([str(a) for a in argv]) == 2
    err = capsys.readouterr().err.strip()
    assert (f"cannot be installed from {path.name} on the targets that need them"
            in err), err
    assert "Traceback" not in err and not out.exists()
    return err


def export_ok(path: Path, target: str, capsys, *args: object, index: str = NOWHERE) -> str:
    """Export of `path` for `target` succeeds; returns the requirements it printed."""
    argv = ["export", path, "-t", target, "--index-url", index, *args]
    assert main([str(a) for a in argv]) == 0, capsys.readouterr().err
    return capsys.readouterr().out
