"""Ingest: files → loaded pages → cleaned text → chunks → embeddings → the knowledge base.

``pipeline`` runs the ingest job (incremental, atomic per file), ``uploads`` checks and stores uploaded
files, and ``documents`` sits above both with the operations every surface calls (upload, remove,
re-index). ``kb`` is the knowledge base (catalogue + indexes), ``migrate`` moves one to another store or
embedder, ``originals`` finds the file behind a citation. Builds on core and retrieval."""
