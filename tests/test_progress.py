"""The download bar: drawn on a terminal, absent from a pipe or with -q; the summary stays.

stderr is a real pseudo-terminal here, because "is this a terminal" is the whole question.
"""

from __future__ import annotations

import fcntl
import os
import pty
import struct
import subprocess
import sys
import termios
from pathlib import Path

from locktext import Pin, hashed_requirements


def run_download(reqs: Path, dest: Path, index_url: str, cache: Path, *extra: str,
                 tty: bool) -> tuple[int, str]:
    cmd = [sys.executable, "-m", "wheelhouse_bundler", "download", str(reqs), "-d", str(dest),
           "--index-url", index_url, "--cache-dir", str(cache), *extra]
    if not tty:
        done = subprocess.run(cmd, capture_output=True, text=True, check=False)
        return done.returncode, done.stderr
    leader, follower = pty.openpty()
    # 24 rows, 100 columns: a fresh pty has no size, and tqdm draws nothing in 0 columns.
    fcntl.ioctl(follower, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 100, 0, 0))
    try:
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=follower)
        os.close(follower)
        chunks = []
        while True:
            try:
                data = os.read(leader, 65536)
            except OSError:  # EIO: the child closed its end
                break
            if not data:
                break
            chunks.append(data)
        return proc.wait(), b"".join(chunks).decode(errors="replace")
    finally:
        os.close(leader)


def test_bar_on_a_terminal_only_and_one_summary_line(tmp_path, index_server, wheel_factory,
                                                     clean_environ) -> None:
    wheel = wheel_factory("bulky", "1.0", payload_size=2_000_000)
    index_server.add(wheel)
    reqs = tmp_path / "requirements.txt"
    reqs.write_text(hashed_requirements([Pin("bulky", "1.0", [wheel])]))

    rc, shown = run_download(reqs, tmp_path / "a", index_server.url, tmp_path / "c1", tty=True)
    assert rc == 0, shown
    assert "download:" in shown and "\r" in shown  # tqdm's bar, redrawn in place
    assert "fetched 1 files, 2.0 MB (0 from cache)" in shown and "MB/s" in shown

    rc, piped = run_download(reqs, tmp_path / "b", index_server.url, tmp_path / "c2", tty=False)
    assert rc == 0, piped
    assert "download:" not in piped and "\r" not in piped
    assert piped.splitlines()[0].startswith("fetched 1 files, 2.0 MB (0 from cache)")

    rc, quiet = run_download(reqs, tmp_path / "c", index_server.url, tmp_path / "c3", "-q",
                             tty=True)
    assert rc == 0 and quiet.strip() == "", quiet
