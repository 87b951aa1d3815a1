"""Retrieval: embedders, vector stores, BM25, fusion and the hybrid retriever. Depends on core only."""
