"""MedFusion inference core: pure Python/torch. Never imports Qt, VTK or ``app`` (checked by import-linter)."""
