"""Files only the service's own user may read: the state directory, the demo's secrets, SQLite.

Made private when they are created (a mode given to ``mkdir``/``open``, never a ``chmod`` after
writing, which leaves a moment in which another local user can open the file), and tightened
when they exist already from an older release.
"""

from __future__ import annotations

import os
from pathlib import Path

DIR_MODE = 0o700
FILE_MODE = 0o600


def private_dir(path: Path) -> Path:
    """``path`` and any missing parents, the last one readable by its owner only."""
    path.mkdir(parents=True, exist_ok=True, mode=DIR_MODE)
    path.chmod(DIR_MODE)
    return path


def write_private(path: Path, text: str) -> None:
    """Write ``text`` to a file that is owner-only from the moment it exists."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, FILE_MODE)
    os.fchmod(fd, FILE_MODE)  # an existing file keeps its old mode through O_CREAT
    with os.fdopen(fd, "w", encoding="utf-8") as out:
        out.write(text)


def touch_private(path: Path) -> None:
    """Create ``path`` empty and owner-only if it is missing (SQLite then opens it as it is)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT, FILE_MODE)
    try:
        os.fchmod(fd, FILE_MODE)
    except PermissionError:  # another user's file (a shared test database): leave it as it is
        pass
    finally:
        os.close(fd)
