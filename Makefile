# The two commands: `make run` (default workflow + report) and `make test` (whole suite).
# Both create the virtual environment first when it is missing or pyproject.toml changed.
VENV ?= .venv
PYTHON ?= python3
CORES ?= 2
BIN := $(VENV)/bin
# snakemake-executor-plugin-slurm 2.8.0 declares numpy>=2.4.5, which cellpose 3.1.1.3
# (numpy<2.1) rules out; it runs with numpy 2.0.2, so it is installed without its
# dependency resolution, followed by its own remaining dependencies.
SLURM_PLUGIN := snakemake-executor-plugin-slurm==2.8.0
SLURM_DEPS := snakemake-executor-plugin-slurm-jobstep==0.6.1 throttler==1.2.3

.PHONY: install run report test lint docs benchmark pretrain pretrain-nuclei pretrain-fish clean

install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml Makefile
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	$(BIN)/python -m pip install --quiet --no-deps $(SLURM_PLUGIN)
	$(BIN)/python -m pip install --quiet $(SLURM_DEPS)
	# Cellpose's and UMAP's numba kernels, compiled once into their caches (about 40 s) instead
	# of in every first job and test of a new environment
	$(BIN)/python -m fishline.jit
	touch $@

run: install
	$(BIN)/snakemake --cores $(CORES)
	$(BIN)/snakemake --report results/report.html
	@echo "report: results/report.html"

# Retrain the shipped chromosome model from config/pretrain.yaml (painted spreads only; the
# real dev metaphases, when ../shared is there, are scored for the card) and put the weights
# and their model card in resources/models/.
RELEASE := results/chromosomes/release/chromosomes_cellpose
pretrain: install
	$(BIN)/snakemake --cores $(CORES) $(RELEASE).pt --configfile config/pretrain.yaml
	cp $(RELEASE).pt $(RELEASE).md resources/models/

# Retrain the shipped nucleus model from config/nuclei_pretrain.yaml (painted fields only;
# stardist's real nuclei image is scored for the card), weights and card to resources/models/.
NUCLEI_RELEASE := results/fish/slides/release/nuclei_cellpose
pretrain-nuclei: install
	$(BIN)/snakemake --cores $(CORES) $(NUCLEI_RELEASE).pt --configfile config/nuclei_pretrain.yaml
	cp $(NUCLEI_RELEASE).pt $(NUCLEI_RELEASE).md resources/models/

# Retrain the shipped FISH classifier from config/fish_pretrain.yaml (cells cut from painted
# fields only; held-out painted test sets are scored for the card), weights and card to
# resources/models/. The training gets every core (--set-threads).
FISH_RELEASE := results/fish/release/ce/fish_classifier
pretrain-fish: install
	$(BIN)/snakemake --cores $(CORES) --set-threads fish_train=$(CORES) \
	  --configfile config/fish_pretrain.yaml -- $(FISH_RELEASE).pt
	cp $(FISH_RELEASE).pt $(FISH_RELEASE).md resources/models/

# One worker per core; a file's tests stay on one worker (module-wide fixtures such as the
# tiny end-to-end run are built once), files handed out in tests/conftest.py's order (longest
# first). The 30 slowest tests are listed at the end.
test: install
	PATH=$(abspath $(BIN)):$$PATH $(BIN)/pytest -n $(CORES) --dist loadfile --no-loadscope-reorder --durations=30

# config/README.md is generated from the config schema (a test fails when it is stale)
docs: install
	$(BIN)/fishline config-docs --output config/README.md

lint: install
	$(BIN)/ruff check src tests benchmarks workflow/scripts
	$(BIN)/snakefmt --check Snakefile workflow/rules
	PATH=$(abspath $(BIN)):$$PATH $(BIN)/snakemake --lint

benchmark: install
	$(BIN)/python benchmarks/run_all.py --tsv benchmarks.tsv

clean:
	rm -rf results logs .snakemake
