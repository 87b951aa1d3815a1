"""Retrieval: embedders, the ``VectorStore`` protocol and its FAISS and Milvus stores, BM25, fusion (with a
dense weight gated on BM25 coverage), sentence-level dense evidence (a chunk's cosine blended with its
best sentence's), Chinese words for English questions (crosslingual), the other region's words for
Chinese ones (regional: 软件 ↔ 軟體), the hybrid
retriever, the calibrated answerability that turns "nothing relevant" into a refusal, and the opt-in
near-miss check (stated_facts) that refuses when the passages on the subject don't state the asked fact. Depends
on core only."""
