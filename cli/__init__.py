"""Command-line front end. Headless commands import only ``inference``; ``view`` imports the app."""
