"""Files only their owner may read: the data directory, the stack's token and keys.

The data directory holds pseudonymous patient references (ClickHouse parts, the delivery
ledger, logs), the API token and the alert-signing key, so nothing in it is for another
user of the machine: the stack sets its umask to 0o077 before it creates anything (every
child inherits it, chDB's parts and SQLite's files included) and makes the directory 0700,
even one that an older version left open.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path

PRIVATE_UMASK = 0o077


def private_umask() -> int:
    """Make every file this process (and its children) creates owner-only; returns the old
    umask."""
    return os.umask(PRIVATE_UMASK)


def private_dir(path: Path) -> None:
    """Create ``path`` (and parents) owner-only, and close it if it exists more open."""
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    if path.stat().st_mode & 0o077:
        path.chmod(0o700)


def write_private(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically, readable by the owner only (0600)."""
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        tmp.replace(path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def private_secret(path: Path, nbytes: int = 32) -> bytes:
    """The secret kept in ``path``, made (random, 0600) on first use; a file readable by
    others is refused rather than trusted."""
    if not path.exists():
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
        write_private(tmp, secrets.token_bytes(nbytes))
        try:
            os.link(tmp, path)  # never replaces a key another process made meanwhile
        except FileExistsError:
            pass
        finally:
            tmp.unlink()
    if path.stat().st_mode & 0o077:
        raise PermissionError(f"{path} is readable by others: chmod 600 it (or delete it)")
    secret = path.read_bytes()
    if len(secret) < 16:
        raise PermissionError(f"{path}: too short for a key ({len(secret)} bytes)")
    return secret
