"""Evaluation library: QA datasets (``dataset``), metrics (``metrics``), the resumable runner behind
``zhiwen eval run`` (``runner``), reports and run comparison (``report``), server-side runs (``jobs``),
the optional LLM judge (``judge``), CMRC 2018 as a retrieval corpus (``cmrc``), the hand-written
paraphrase set (``paraphrase``, data/paraphrase/) and the answerability fit (``fit_answerability``).

It builds on core, retrieval, ingest and llm; ``finetune`` uses it for its before/after evaluation and
the benchmarks in ``bench/`` for their datasets and metrics, while nothing here imports either."""
