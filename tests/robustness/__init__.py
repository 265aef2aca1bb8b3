"""Robustness corpus: generated malformed/unusual inputs, run through the readers with a timeout."""
