"""Prefect flows: thin wrappers over technic functions (every job also runs without Prefect).

Importing the package applies the project's Prefect settings (:mod:`flows.prefect_defaults`)
before any flow module imports Prefect.
"""

from flows.prefect_defaults import apply_prefect_defaults

apply_prefect_defaults()
