# keras-depth: `make run` runs the whole pipeline, `make test` runs the tests.
# Both create .venv (Python 3.11) and install the package on first use.

PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
CONFIG ?= configs/default.yaml
OUTPUT_DIR ?= runs
MODEL_NAME ?= depth
PORT ?= 8501
MLFLOW_PORT ?= 5000
PYTEST_ARGS ?=

.PHONY: run test test-fast bench soak serve mlflow-ui lint clean distclean venv

venv: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e ".[dev]"
	@touch $@

run: venv
	$(PY) -m pipeline.run --stage all --config $(CONFIG) --output-dir $(OUTPUT_DIR)

# The loss lambda sweep {0, 0.5, 1} through evaluate (nothing is pushed): one MLflow parent run with a
# child run per lambda; the comparison table and plot land in $(OUTPUT_DIR)/sweeps/<time>/.
.PHONY: ablation
ablation: venv
	$(PY) -m pipeline.run --sweep loss.lam=0,0.5,1 --stage evaluate --config $(CONFIG) --output-dir $(OUTPUT_DIR)

test: venv
	$(PY) -m pytest $(PYTEST_ARGS)

test-fast: venv
	$(PY) -m pytest -m "not e2e" $(PYTEST_ARGS)

bench: venv
	$(PY) -m benchmarks.run --out $(OUTPUT_DIR)/benchmarks \
		--tracking-uri "$${MLFLOW_TRACKING_URI:-sqlite:///$(abspath $(OUTPUT_DIR))/mlflow.db}"

.PHONY: bench-gpu
bench-gpu: venv
	$(PY) -m benchmarks.gpu

# The method against a small U-Net trained as long as `make run` trained coarse + fine, on this machine.
.PHONY: quality
quality: venv
	$(PY) -m benchmarks.launch quality --run-dir $(OUTPUT_DIR)

soak: venv
	$(PY) -m benchmarks.soak --out $(OUTPUT_DIR)/soak --model_base_path $(OUTPUT_DIR)/serving/$(MODEL_NAME)

serve: venv
	$(PY) -m serving.server --rest_api_port $(PORT) --model_name $(MODEL_NAME) \
		--model_base_path $(abspath $(OUTPUT_DIR))/serving/$(MODEL_NAME)

mlflow-ui: venv
	$(PY) -m mlflow ui --backend-store-uri sqlite:///$(abspath $(OUTPUT_DIR))/mlflow.db \
		--host 127.0.0.1 --port $(MLFLOW_PORT)

lint: venv
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

clean:
	rm -rf $(OUTPUT_DIR) .pytest_cache .ruff_cache build *.egg-info
	find . -name __pycache__ -type d -prune -not -path "./$(VENV)/*" -exec rm -rf {} +

distclean: clean
	rm -rf $(VENV)
