"""Snakemake's lock on a working folder outlives a killed run (kill -9, a closed terminal, an
out-of-memory kill), and the next run then stops until the user types ``snakemake --unlock``.
The workflow records which process took the lock; a later start removes the lock only when
that process is gone from this machine, so a plain rerun resumes."""

from __future__ import annotations

import json
import os
import socket
from pathlib import Path

SNAKEMAKE_FOLDER = Path(".snakemake")
OWNER_FILE = "fishline_lock_owner.json"


def _start_time(pid: int) -> str | None:
    """The kernel's start time of process ``pid`` (clock ticks since boot; None where the
    process is gone or /proc is missing). Tells a live process from a later one that reused
    its number."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return stat.rsplit(")", 1)[1].split()[19]


def _running(pid: int, start: str | None) -> bool:
    """Whether the process that wrote the record still runs."""
    if Path("/proc").is_dir():
        return start is not None and _start_time(pid) == start
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def record_lock_owner(folder: Path = SNAKEMAKE_FOLDER) -> None:
    """Record this process (host, pid, start time) as the one holding the folder's lock:
    called once the run has taken it."""
    pid = os.getpid()
    record = {"host": socket.gethostname(), "pid": pid, "start": _start_time(pid)}
    temp = folder / f".{OWNER_FILE}.partial"
    temp.write_text(json.dumps(record))
    os.replace(temp, folder / OWNER_FILE)


def clear_stale_lock(folder: Path = SNAKEMAKE_FOLDER) -> str | None:
    """Remove the folder's lock when the run that took it is known to be gone; return what
    was done, or None when there was no lock or it may still be held (no record, a record
    older than the lock, another host, or a live process) and is left to Snakemake."""
    locks = list((folder / "locks").glob("*.lock"))
    owner_file = folder / OWNER_FILE
    if not locks or not owner_file.is_file():
        return None
    if owner_file.stat().st_mtime < max(lock.stat().st_mtime for lock in locks):
        return None  # the lock was taken after the record: its owner is unknown
    try:
        owner = json.loads(owner_file.read_text())
        host, pid, start = owner["host"], int(owner["pid"]), owner["start"]
    except (OSError, ValueError, KeyError, TypeError):
        return None
    if host != socket.gethostname() or _running(pid, start):
        return None
    for lock in locks:
        lock.unlink(missing_ok=True)
    return (
        f"removed the lock left in {folder} by a run that was killed (process {pid} on "
        f"{host}); half-written outputs are redone and trainings resume from their checkpoints"
    )
