"""Shared by every layer: the error types, credential redaction, path rules, safe file writes."""
