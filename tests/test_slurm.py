"""The SLURM profile against a real single-node SLURM cluster (munge, slurmctld, slurmd).

In CI (root, Debian packages installed by .ci/run) the test must run; elsewhere it skips with
the reason the cluster cannot be started.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch
import yaml
from slurm_cluster import SingleNodeSlurm, unavailable_reason
from workflow_helpers import job_environment

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
TINY = ROOT / "tests" / "configs" / "tiny.yaml"
pytestmark = [pytest.mark.workflow, pytest.mark.slow]
# One network rule: (rule, wildcards as in the SLURM log path, empty for rules without
# wildcards) -> (its log, its output). That every network rule, and no other, asks for a GPU
# is checked on the whole DAG by test_workflow_plans.py's dry run; here the profile and the
# executor turn that request into a real allocation, a retry and a clear failure. (The
# SimSearch feature rule needs one painted input; a second network rule cost a minute more,
# mostly in the plugin's status polls, which back off by 10 s after every poll that sees no
# job succeed.)
NETWORK_JOBS = {
    ("ss_features", ""): ("logs/ss_features/ss_features.log", "results/simsearch/features"),
}
SUBMITTED = re.compile(
    r"has been submitted with SLURM jobid (\d+) \(log: \S*/rule_(\w+)/(?:(\S+)/)?\d+\.log\)"
)


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SingleNodeSlurm]:
    """A running cluster for this module; its daemons are stopped afterwards."""
    reason = unavailable_reason()
    if reason is not None:
        if os.environ.get("CI"):
            pytest.fail(f"CI must run the SLURM test, but: {reason}")
        pytest.skip(reason)
    if torch.cuda.is_available():
        pytest.skip("a real GPU is visible: the fake GPU's jobs would train on it")
    with SingleNodeSlurm(tmp_path_factory.mktemp("slurm")) as running:
        yield running


def test_profile_submits_every_job_with_gpus_only_for_networks(
    cluster: SingleNodeSlurm, tmp_path: Path
) -> None:
    config = yaml.safe_load(TINY.read_text())
    config["device"] = "cuda"  # training rules request a GPU; the fake one cannot run torch
    configfile = tmp_path / "cuda.yaml"
    configfile.write_text(yaml.safe_dump(config))
    command = [
        "timeout", "-k", "10", "600",
        str(BIN / "snakemake"),
        "--snakefile", str(ROOT / "Snakefile"),
        "--directory", str(tmp_path),
        "--configfile", str(configfile),
        "--workflow-profile", str(ROOT / "profiles/slurm"),
        "--slurm-status-command", "squeue",  # no slurmdbd here, so no sacct
        "--slurm-init-seconds-before-status-checks", "1",  # polls at 1 s, +10 s per idle poll
        "--slurm-no-account",
        "--max-threads", "2",
        "--keep-going",
        "results/fish/synthetic/val.tif",
        *(output for _, output in NETWORK_JOBS.values()),
    ]  # fmt: skip
    result = subprocess.run(
        command,
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=job_environment(tmp_path, PATH=f"{BIN}:/usr/bin:/bin:/usr/sbin:/sbin"),
    )
    output = result.stdout + result.stderr
    assert result.returncode not in (124, 137), f"the cluster run timed out: {output[-3000:]}"
    jobs = [
        (rule, wildcards, cluster.job(job_id))
        for job_id, rule, wildcards in SUBMITTED.findall(output)
    ]
    # every job of the DAG went through sbatch: the painted inputs once (fish_paint asks for 4
    # threads, capped to the node's 2), the network job twice (the retry)
    assert sorted((rule, wildcards) for rule, wildcards, _ in jobs) == sorted(
        [
            ("fish_paint", "val"),
            ("ss_paint", ""),
            *[(rule, wildcards) for rule, wildcards in NETWORK_JOBS for _ in range(2)],
        ]
    ), output[-3000:]
    network_rules = {rule for rule, _ in NETWORK_JOBS}
    for rule, _, job in jobs:
        if rule in network_rules:
            assert job["JobState"] == "FAILED", (rule, job)
            assert job["TresPerJob"] == "gres:gpu:1", (rule, job)
        else:
            assert job["JobState"] == "COMPLETED", (rule, job)
            assert "gpu" not in job.get("TresPerJob", ""), (rule, job)  # CPU rules get no GPU
    # each network job saw its GPU allocation, and failed on it with a clear message
    for log, _ in NETWORK_JOBS.values():
        text = (tmp_path / log).read_text()
        assert "config [device: cuda]: torch sees no CUDA device (CUDA_VISIBLE_DEVICES=0)" in text
    # a failed job is reported as failed and retried with attempt-scaled memory
    assert result.returncode != 0 and "Error in rule ss_features" in output
    memory = [
        re.search(r"mem=(\d+)M", job["TRES"])[1] for rule, _, job in jobs if rule == "ss_features"
    ]
    assert memory == ["4000", "8000"]
    assert (tmp_path / "results/fish/synthetic/val.tif").exists()
    assert not any((tmp_path / output).exists() for _, output in NETWORK_JOBS.values())
