"""LoRA fine-tuning: SFT data prep (``data``, ``from_kb``), PEFT LoRA training (``train``), merging
(``merge``), a transformers server for base + adapters (``hf_server``) and the before/after evaluation
(``evaluate``). Heavy dependencies (torch, transformers, peft) are imported where used, never here."""
