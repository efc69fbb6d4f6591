"""The stale-lock check: a lock is removed only when the run that took it is gone."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

from fishline.runlock import OWNER_FILE, clear_stale_lock, record_lock_owner


def _locked_folder(tmp_path: Path) -> Path:
    folder = tmp_path / ".snakemake"
    (folder / "locks").mkdir(parents=True)
    (folder / "locks/0.input.lock").write_text("a\n")
    (folder / "locks/0.output.lock").write_text("b\n")
    return folder


def _dead_pid() -> int:
    finished = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                              capture_output=True, text=True, check=True)  # fmt: skip
    return int(finished.stdout)


def test_lock_of_a_finished_process_is_removed(tmp_path: Path) -> None:
    folder = _locked_folder(tmp_path)
    record_lock_owner(folder)
    record = json.loads((folder / OWNER_FILE).read_text())
    assert record["pid"] == os.getpid()
    assert clear_stale_lock(folder) is None  # this process is alive: the lock stays
    assert len(list((folder / "locks").glob("*.lock"))) == 2
    record["pid"] = _dead_pid()
    (folder / OWNER_FILE).write_text(json.dumps(record))
    message = clear_stale_lock(folder)
    assert message is not None and f"process {record['pid']}" in message
    assert not list((folder / "locks").glob("*.lock"))


def test_lock_of_unknown_owner_is_left_alone(tmp_path: Path) -> None:
    folder = _locked_folder(tmp_path)
    assert clear_stale_lock(folder) is None  # no record
    record = {"host": "another-node", "pid": _dead_pid(), "start": "1"}
    (folder / OWNER_FILE).write_text(json.dumps(record))
    assert clear_stale_lock(folder) is None  # taken on another machine
    record["host"] = socket.gethostname()
    (folder / OWNER_FILE).write_text(json.dumps(record))
    os.utime(folder / OWNER_FILE, (1, 1))  # the record predates the lock: a newer run took it
    assert clear_stale_lock(folder) is None
    assert len(list((folder / "locks").glob("*.lock"))) == 2
    assert clear_stale_lock(tmp_path / "no-such-folder") is None
