"""CLI command groups kept out of :mod:`technic.cli` (each a typer app registered there)."""
