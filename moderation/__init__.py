"""Moderation: sensitive words, compliance phrases and PII on questions, answers, streams and ingested
text; evasion-resistant matching; an audit log that never records the matched personal data."""
