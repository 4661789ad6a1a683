"""Writing the user's files so that they appear whole or not at all."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Optional


def write_new_file(path: Path, text: str, mode: Optional[int] = None) -> None:
    """Create `path` (which must not exist) holding `text` as UTF-8, flushed to disk.

    O_EXCL: never write through a file or a symlink already there under that
    name (a temporary name another process planted). `mode` (e.g. the mode of
    the file it will replace) is set after writing. Raises OSError (FileExistsError
    when `path` exists); the caller renames the file into place with os.replace.
    """
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    with os.fdopen(fd, "wb") as handle:
        handle.write(text.encode("utf-8"))
        handle.flush()
        os.fsync(handle.fileno())
    if mode is not None:
        os.chmod(path, mode)
