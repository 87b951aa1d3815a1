"""Benchmarks: scripts that measure zhiwen against baselines (a plain LangChain pipeline, other retrievers,
stores and models) and print the tables in README.md, each run as ``python -m bench.NAME`` (trust,
retrieval, ingest, extractive, moderation, stores, api, finetune; ``--help`` for options).

They sit above every layer and may import any of them (``eval``'s datasets and metrics included);
nothing imports them. ``bench.common`` holds what the CMRC scripts share."""
