"""Ingest: files → loaded pages → cleaned text → chunks → embeddings → the knowledge base."""
