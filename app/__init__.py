"""MedFusion Viewer desktop app (Qt/VTK)."""
