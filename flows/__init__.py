"""Prefect flows: thin wrappers over technic functions (every job also runs without Prefect)."""
