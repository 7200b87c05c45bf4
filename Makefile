# seqbeam: `make demo` runs the main job on the embedded default, `make test` runs the tests.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
TASKS := emoji translate dates names reber
DEMO_DIR ?= runs/demo

.PHONY: install demo test benchmark clean

# The virtualenv is (re)built whenever setup.py changes.
$(STAMP): setup.py
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip setuptools wheel
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	@for task in $(TASKS); do \
		echo "== preprocess $$task -> $(DEMO_DIR)/$$task/data"; \
		$(BIN)/seqbeam preprocess --config configs/$$task.yaml --set output_dir=$(DEMO_DIR) || exit 1; \
		echo "== train and export $$task -> $(DEMO_DIR)/$$task/model"; \
		$(BIN)/seqbeam train --config configs/$$task.yaml --set output_dir=$(DEMO_DIR) || exit 1; \
		echo "== infer $$task -> $(DEMO_DIR)/$$task/predictions"; \
		$(BIN)/seqbeam infer --config configs/$$task.yaml --set output_dir=$(DEMO_DIR) || exit 1; \
	done
	@echo "Demo outputs under $(DEMO_DIR)/<task>/: data/ (shards, vocab/, rejected/, metadata.json),"
	@echo "train/ (history.json, metrics.json, logs/), model/<version>/ (SavedModel + model_card.json),"
	@echo "predictions/*.parquet, rejected/*.parquet and infer_summary.json."

test: $(STAMP)
	$(BIN)/python -m pytest -q tests

benchmark: $(STAMP)
	$(BIN)/python -m pip install --quiet -e ".[bench]"
	$(BIN)/python benchmarks/preprocess.py
	$(BIN)/python benchmarks/infer.py

clean:
	rm -rf runs .pytest_cache
