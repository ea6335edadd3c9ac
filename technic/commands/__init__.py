"""CLI command groups kept out of :mod:`technic.cli` (registered there in a few lines):
argument parsing and presentation only; the work is in :mod:`technic.jobs`."""
