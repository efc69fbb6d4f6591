#!/usr/bin/env bash
# Snakemake runs this inside the new conda env after creating it; the working directory
# is the workflow's (the fishline checkout), whose package the rules' scripts import.
# Editable, so jobs always run the checkout's current code: a `git pull` needs no new env
# (the env is rebuilt only when envs/fishline.yaml, i.e. a pinned dependency, changes).
set -euo pipefail
python -m pip install --no-deps --editable .
