"""CLI command groups that live outside ``technic/cli.py`` (each registers itself there with
one line)."""
