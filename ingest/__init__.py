"""Ingest: files → loaded pages → cleaned text → chunks → embeddings → the knowledge base.

``loaders`` reads each format into pages (``office``: slides and spreadsheets; ``ocr``: photos and
scanned PDF pages; ``tables``: table rows kept whole, so a chunk never cuts one), ``clean`` and
``chunking`` make citable text and chunks (and the sentences each chunk's sentence vectors embed), ``pipeline`` runs the ingest job (incremental, atomic per
file), ``uploads`` checks and stores uploaded files, and ``documents`` sits above both with the
operations every surface calls (upload, remove, re-index); ``sync`` mirrors a folder. ``kb`` is the
knowledge base (catalogue + indexes) and what the surfaces read of it, ``migrate`` moves one to another
store or embedder, ``originals`` finds the file behind a citation. Builds on core, moderation (the
ingest surface masks PII before anything is indexed) and retrieval."""
