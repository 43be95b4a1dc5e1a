"""Reading the files a user names (manifests, nets, PNML, rate cards): bounded, with messages.

Every reader stops at :data:`MAX_FILE_BYTES` (16 MiB), so a runaway generated file is refused
in milliseconds instead of filling memory. Only regular files are read: a FIFO (named pipe), a
device (``/dev/zero``, ``/dev/tty``), a socket or a directory is refused at once, never waited
on. Standard input is the one exception: a path that *is* standard input (``/dev/stdin``,
``/dev/fd/0``, ``/proc/self/fd/0``) is read when standard input is a pipe or a file, so
``cat net.yaml | fluxnb validate /dev/stdin`` works. Problems are ``ManifestError`` kinds
``missing_file``, ``unreadable_file`` and ``too_large``.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from .._exceptions import ManifestError, Problem
from ._located import MAX_TEXT

#: The largest manifest, net, PNML file or rate card fluxnb reads, in bytes (16 MiB).
MAX_FILE_BYTES = MAX_TEXT


def read_file_bytes(path: str | os.PathLike[str], what: str = "manifest") -> bytes:
    """The bytes of ``path`` (at most :data:`MAX_FILE_BYTES`); ManifestError otherwise."""
    p = Path(path)
    try:
        # O_NONBLOCK: opening a FIFO with no writer would wait forever; it is refused below
        fd = os.open(p, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
        try:
            _regular_or_stdin(fd, p, what)
            if hasattr(os, "O_NONBLOCK"):
                os.set_blocking(fd, True)  # a pipe on standard input: wait for its data
        except BaseException:
            os.close(fd)
            raise
        with open(fd, "rb") as f:
            data = f.read(MAX_FILE_BYTES + 1)
    except FileNotFoundError:
        raise ManifestError(
            [Problem("missing_file", "", f"no such {what} file: {p}")], str(p)
        ) from None
    except (OSError, ValueError) as exc:
        raise ManifestError(
            [Problem("unreadable_file", "", f"cannot read the {what}: {exc}")], str(p)
        ) from None
    if len(data) > MAX_FILE_BYTES:
        raise ManifestError(
            [
                Problem(
                    "too_large",
                    "",
                    f"the {what} is larger than {MAX_FILE_BYTES:,} bytes (16 MiB), the most "
                    "fluxnb reads; is this the right file?",
                )
            ],
            str(p),
        )
    return data


def _regular_or_stdin(fd: int, path: Path, what: str) -> None:
    """Refuse anything but a regular file, or standard input when it is a pipe or a file."""
    mode = os.fstat(fd).st_mode
    if stat.S_ISREG(mode):
        return
    if stat.S_ISFIFO(mode) and _is_stdin(fd):
        return
    kind = "not a regular file"
    if stat.S_ISDIR(mode):
        kind = "a directory"
    elif stat.S_ISFIFO(mode):
        kind = "a FIFO (named pipe)"
    elif stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        kind = "a device"
    elif stat.S_ISSOCK(mode):
        kind = "a socket"
    raise ManifestError(
        [
            Problem(
                "unreadable_file",
                "",
                f"cannot read the {what}: {path} is {kind}, not a regular file; fluxnb reads "
                "only files (or standard input piped in, as /dev/stdin)",
            )
        ],
        str(path),
    )


def _is_stdin(fd: int) -> bool:
    """Whether ``fd`` is the same pipe or file as standard input (``/dev/stdin``)."""
    try:
        mine, stdin = os.fstat(fd), os.fstat(0)
    except OSError:
        return False
    return (mine.st_dev, mine.st_ino) == (stdin.st_dev, stdin.st_ino)


def read_file_text(path: str | os.PathLike[str], what: str = "manifest") -> str:
    """The UTF-8 text of ``path`` (at most :data:`MAX_FILE_BYTES`); ManifestError otherwise."""
    data = read_file_bytes(path, what)
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ManifestError(
            [
                Problem(
                    "unreadable_file",
                    "",
                    f"cannot read the {what}: it is not UTF-8 text (byte {exc.start})",
                )
            ],
            str(path),
        ) from None
