"""Glue between the document model, background workers and the widgets."""
