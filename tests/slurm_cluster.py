"""A real single-node SLURM cluster for tests: munge, slurmctld and slurmd from Debian packages.

The controller runs configless, so job steps (whose environment the Snakemake job-step plugin
strips of ``SLURM_*`` variables, ``SLURM_CONF`` included) find the configuration through
slurmd's cache in ``/run/slurm/conf``. The node has one fake GPU (a GRES whose device file is
a link to /dev/null), so jobs that ask for a GPU get ``CUDA_VISIBLE_DEVICES`` set. Every daemon
this harness starts is stopped by the PID in its pid file.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

DAEMONS = ("slurmctld", "slurmd", "munged", "munge", "sbatch", "squeue", "scontrol", "sinfo")
MUNGE_SOCKET = Path("/run/munge/munge.socket.2")
CONFIGLESS_CACHE = Path("/run/slurm/conf")


def unavailable_reason() -> str | None:
    """Why a test cluster cannot be started here, or None when it can."""
    if os.geteuid() != 0:
        return "starting slurmctld, slurmd and munged needs root"
    missing = [name for name in DAEMONS if shutil.which(name) is None]
    if missing:
        return (
            f"SLURM is not installed (missing {', '.join(missing)}; "
            "Debian packages: slurmctld slurmd slurm-client munge)"
        )
    if Path("/etc/slurm/slurm.conf").exists():
        return "/etc/slurm/slurm.conf exists: this machine belongs to a real cluster"
    if not Path("/etc/munge/munge.key").exists():
        return "/etc/munge/munge.key is missing (install the munge package)"
    return None


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _node_line(hostname: str) -> str:
    """The node's hardware as slurmd sees it, memory kept below the machine's."""
    fields = dict(
        item.split("=", 1)
        for item in subprocess.run(
            ["slurmd", "-C"], capture_output=True, text=True, check=True
        ).stdout.split()
        if "=" in item
    )
    hardware = " ".join(
        f"{key}={fields[key]}"
        for key in ("CPUs", "Boards", "SocketsPerBoard", "CoresPerSocket", "ThreadsPerCore")
    )
    memory = int(int(fields["RealMemory"]) * 0.8)
    return f"NodeName={hostname} NodeAddr=127.0.0.1 {hardware} RealMemory={memory} Gres=gpu:1"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    status = Path(f"/proc/{pid}/status")
    return not (status.exists() and "\nState:\tZ" in status.read_text())


def _stop(pid: int, timeout: float = 15.0) -> None:
    """SIGTERM, then SIGKILL if the process has not gone within ``timeout`` seconds."""
    if not _alive(pid):
        return
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and _alive(pid):
        time.sleep(0.2)
    if _alive(pid):
        os.kill(pid, signal.SIGKILL)


class SingleNodeSlurm:
    """Start munge, slurmctld and slurmd under ``root``; stop exactly those on exit."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.conf = root / "slurm.conf"
        self.pid_files: list[Path] = []

    def _write_config(self) -> None:
        hostname = socket.gethostname()
        for folder in ("state", "spool"):
            (self.root / folder).mkdir(parents=True, exist_ok=True)
        gpu = self.root / "fake-gpu0"
        gpu.symlink_to("/dev/null")
        self.controller_port = _free_port()
        self.conf.write_text(
            "\n".join(
                [
                    "ClusterName=fishline",
                    f"SlurmctldHost={hostname}(127.0.0.1)",
                    "SlurmUser=root",
                    "SlurmdUser=root",
                    f"SlurmctldPort={self.controller_port}",
                    f"SlurmdPort={_free_port()}",
                    "SlurmctldParameters=enable_configless",
                    "AuthType=auth/munge",
                    f"StateSaveLocation={self.root / 'state'}",
                    f"SlurmdSpoolDir={self.root / 'spool'}",
                    f"SlurmctldPidFile={self.root / 'slurmctld.pid'}",
                    f"SlurmdPidFile={self.root / 'slurmd.pid'}",
                    f"SlurmctldLogFile={self.root / 'slurmctld.log'}",
                    f"SlurmdLogFile={self.root / 'slurmd.log'}",
                    "ProctrackType=proctrack/linuxproc",
                    "TaskPlugin=task/none",
                    "SelectType=select/cons_tres",
                    "SelectTypeParameters=CR_Core_Memory",
                    "MinJobAge=3600",  # finished jobs stay queryable for the whole test run
                    "DefMemPerCPU=500",
                    "ReturnToService=2",
                    "GresTypes=gpu",
                    "MpiDefault=none",
                    "JobCompType=jobcomp/none",
                    "AccountingStorageType=accounting_storage/none",
                    _node_line(hostname),
                    f"PartitionName=main Nodes={hostname} Default=YES MaxTime=INFINITE State=UP",
                    "",
                ]
            )
        )
        (self.root / "gres.conf").write_text(
            f"AutoDetect=off\nNodeName={hostname} Name=gpu File={gpu}\n"
        )

    def _start_munge(self) -> None:
        """Start munged unless one already answers (then it is not ours to stop)."""
        if (
            MUNGE_SOCKET.exists()
            and subprocess.run(["munge", "-n"], capture_output=True).returncode == 0
        ):
            return
        MUNGE_SOCKET.parent.mkdir(parents=True, exist_ok=True)
        shutil.chown(MUNGE_SOCKET.parent, "munge", "munge")
        subprocess.run(["runuser", "-u", "munge", "--", "munged"], check=True, timeout=30)
        self.pid_files.append(MUNGE_SOCKET.parent / "munged.pid")

    def start(self, timeout: float = 60.0) -> None:
        """Start the daemons and wait until the node is idle."""
        self._write_config()
        self._start_munge()
        subprocess.run(["slurmctld", "-f", str(self.conf)], check=True, timeout=30)
        self.pid_files.append(self.root / "slurmctld.pid")
        subprocess.run(
            ["slurmd", "--conf-server", f"127.0.0.1:{self.controller_port}"],
            check=True,
            timeout=30,
        )
        self.pid_files.append(self.root / "slurmd.pid")
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            state = self.run("sinfo", "--noheader", "--format=%T").stdout.strip()
            if state == "idle":
                return
            time.sleep(1)
        raise RuntimeError(f"the SLURM node did not come up (state {state!r}): {self.logs()}")

    def run(self, *command: str) -> subprocess.CompletedProcess:
        """A SLURM client command against this cluster."""
        return subprocess.run(
            command,
            capture_output=True,
            text=True,
            timeout=60,
            env={**os.environ, "SLURM_CONF": str(self.conf)},
        )

    def job(self, job_id: str) -> dict[str, str]:
        """``scontrol show job`` as a dict (finished jobs stay visible for MinJobAge, 1 h)."""
        text = self.run("scontrol", "show", "job", job_id).stdout
        return dict(item.split("=", 1) for item in text.split() if "=" in item)

    def logs(self) -> str:
        """The last lines of the daemons' logs, for failure messages."""
        tails = []
        for name in ("slurmctld.log", "slurmd.log"):
            path = self.root / name
            if path.exists():
                tails.append(f"{name}: " + " | ".join(path.read_text().splitlines()[-5:]))
        return "\n".join(tails)

    def stop(self) -> None:
        """Cancel leftover jobs, then stop every daemon this harness started, by PID."""
        if (self.root / "slurmctld.pid").exists():
            self.run("scancel", "--user", "root")
        for pid_file in reversed(self.pid_files):
            if pid_file.exists():
                _stop(int(pid_file.read_text().split()[0]))
        if CONFIGLESS_CACHE.is_symlink() and str(self.root) in os.readlink(CONFIGLESS_CACHE):
            CONFIGLESS_CACHE.unlink()

    def __enter__(self) -> SingleNodeSlurm:
        try:
            self.start()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
