"""The project's Prefect settings for offline and busy machines, in one place.

Applied (as environment defaults) when the ``flows`` package is imported, so every flow run,
``python -m flows.*`` command and in-process flow call (``from flows.jobs import scan``) gets
them; the test suite applies them in ``tests/conftest.py`` before Prefect is imported, and the
compose stack sets the same values (docker-compose.yml). A variable already in the environment
wins: set e.g. ``PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS=300`` to change one.

Prefect reads its settings when ``prefect`` is first imported: import ``flows`` (or call
:func:`apply_prefect_defaults`) before it. docs/operations.md ("Prefect settings") lists them.
This module imports nothing from Prefect.
"""

from __future__ import annotations

import os
from collections.abc import MutableMapping

#: Setting → value, and why.
PREFECT_DEFAULTS: dict[str, str] = {
    # No anonymous usage reports from a server (ephemeral or `prefect server start`) to
    # Prefect's analytics endpoint: nothing leaves the machine, and no errors offline.
    "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
    # No orchestration telemetry to Prefect Cloud (technic never uses Cloud).
    "PREFECT_CLOUD_ENABLE_ORCHESTRATION_TELEMETRY": "false",
    # The UI shows no Prefect Cloud promotions (it cannot reach them offline anyway).
    "PREFECT_SERVER_UI_SHOW_PROMOTIONAL_CONTENT": "false",
    # A flow called without PREFECT_API_URL starts a temporary ("ephemeral") server; on a
    # loaded 2-core machine its start-up took more than Prefect's 20 s default
    # (`python -m flows.daily_pipeline` failed after the timeout). Two minutes is ample.
    "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "120",
}


def apply_prefect_defaults(environ: MutableMapping[str, str] | None = None) -> dict[str, str]:
    """Put :data:`PREFECT_DEFAULTS` into ``environ`` (default ``os.environ``) where unset.

    Args:
        environ: the environment to update.

    Returns:
        The settings this call set (those already present are left as they are).
    """
    env = os.environ if environ is None else environ
    added = {k: v for k, v in PREFECT_DEFAULTS.items() if k not in env}
    env.update(added)
    return added
