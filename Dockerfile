# syntax=docker/dockerfile:1
# 知问 zhiwen: the web UI image (CPU only; the LLM runs in the vllm service of docker-compose.yml).
#
#   docker build -t zhiwen .
#   docker run --rm -p 8501:8501 -v zhiwen-data:/data zhiwen        # FAISS, extractive answers
#
# Stage 1 builds a virtual environment; stage 2 copies only that venv (no compilers, no source tree).

FROM python:3.11-slim AS build

ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PATH=/opt/venv/bin:$PATH
RUN python -m venv /opt/venv && pip install --upgrade pip

# torch first, on its own, from the CPU-only index: a plain `pip install torch` pulls the multi-GB CUDA
# build, which this CPU image never uses (see the Makefile, which does the same for .venv). That index is
# not reachable from zhiwen's development sandbox (PyPI only), but a normal `docker build` reaches it.
RUN pip install torch==2.13.0 --index-url https://download.pytorch.org/whl/cpu

WORKDIR /src
COPY . .
# The project itself, with pymilvus + milvus-lite for ZHIWEN_VECTOR_STORE=milvus and rapidocr for photos
# and scanned PDFs (the PP-OCR models ship inside its wheel). torch is already satisfied, so pip keeps the
# CPU build.
RUN pip install ".[milvus,ocr]"


FROM python:3.11-slim

# libgomp1: OpenMP runtime, needed by some native wheels (FAISS, milvus-lite) when they do not bundle it.
# libgl1, libglib2.0-0: what opencv-python (pulled in by rapidocr, the OCR extra) loads at import.
RUN apt-get update \
    && apt-get install -y --no-install-recommends libgomp1 libgl1 libglib2.0-0 \
    && rm -rf /var/lib/apt/lists/*

RUN useradd --create-home --uid 10001 --shell /usr/sbin/nologin zhiwen \
    && mkdir -p /app /data \
    && chown zhiwen:zhiwen /app /data

COPY --from=build /opt/venv /opt/venv
# The bundled sample corpus, for a first `zhiwen ingest samples/corpus --kb demo` inside the container.
COPY --from=build --chown=zhiwen:zhiwen /src/samples/corpus /app/samples/corpus

ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    HOME=/home/zhiwen \
    ZHIWEN_DATA_DIR=/data \
    HF_HOME=/data/.cache/huggingface

USER zhiwen
WORKDIR /app
EXPOSE 8501

HEALTHCHECK --interval=30s --timeout=10s --start-period=60s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://localhost:8501/_stcore/health', timeout=5)"]

CMD ["zhiwen", "ui", "--host", "0.0.0.0", "--port", "8501"]
