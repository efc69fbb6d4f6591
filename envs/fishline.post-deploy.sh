#!/usr/bin/env bash
# Snakemake runs this inside the new conda env after creating it; the working directory
# is the workflow's (the fishline checkout), whose package the rules' scripts import.
set -euo pipefail
python -m pip install --no-deps .
