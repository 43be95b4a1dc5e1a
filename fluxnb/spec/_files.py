"""Reading the files a user names (manifests, nets, PNML, rate cards): bounded, with messages.

Every reader stops at :data:`MAX_FILE_BYTES` (16 MiB), so ``fluxnb validate /dev/zero`` or a
runaway generated file is refused in milliseconds instead of filling memory; a pipe such as
``/dev/stdin`` still works. Problems are ``ManifestError`` kinds ``missing_file``,
``unreadable_file`` and ``too_large``.
"""

from __future__ import annotations

import os
from pathlib import Path

from .._exceptions import ManifestError, Problem
from ._located import MAX_TEXT

#: The largest manifest, net, PNML file or rate card fluxnb reads, in bytes (16 MiB).
MAX_FILE_BYTES = MAX_TEXT


def read_file_bytes(path: str | os.PathLike[str], what: str = "manifest") -> bytes:
    """The bytes of ``path`` (at most :data:`MAX_FILE_BYTES`); ManifestError otherwise."""
    p = Path(path)
    try:
        with open(p, "rb") as f:
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
