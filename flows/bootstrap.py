"""Server-side set-up of a technic deployment: the work pool and the concurrency limits.

Run once against the Prefect server ``PREFECT_API_URL`` points at, before ``prefect deploy
--all`` (``make up`` does both inside the worker container)::

    python -m flows.bootstrap            # technic-pool + "database" limit of 2
    python -m flows.bootstrap --database-limit 4
    python -m flows.bootstrap --choices  # after `prefect deploy --all`: the run forms'
                                         # sector choices, from the database

``--choices`` writes the run-form schema into every registered deployment
(:mod:`flows.choices`): optional parameters as plain inputs (a date picker for dates) and the
sectors stored in the database as the choices of a ``sectors`` parameter (a multi-select);
run it again after new sectors are ingested.

Idempotent: an existing pool is kept, an existing limit is set to the new value. The limit is a
tag concurrency limit (Prefect stores it as the global limit ``tag:database``): at most that
many task runs tagged ``database`` (ingest, feature refresh) run at once across every flow run,
so a late daily run and an intraday refresh never write to PostgreSQL together.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os

from flows.jobs import DATABASE_TAG

#: The process work pool the deployments of prefect.yaml use.
WORK_POOL = "technic-pool"
#: Default number of ``database``-tagged tasks that may run at once
#: (``TECHNIC_DB_TASK_CONCURRENCY`` overrides it).
DEFAULT_DATABASE_LIMIT = 2


def database_limit() -> int:
    """The configured limit on concurrent database-heavy tasks (``TECHNIC_DB_TASK_CONCURRENCY``,
    default 2).

    Raises:
        ValueError: the variable is not an integer >= 1.
    """
    raw = os.environ.get("TECHNIC_DB_TASK_CONCURRENCY", str(DEFAULT_DATABASE_LIMIT))
    try:
        value = int(raw)
    except ValueError:
        value = 0
    if value < 1:
        raise ValueError(f"TECHNIC_DB_TASK_CONCURRENCY must be an integer >= 1, got {raw!r}")
    return value


async def abootstrap(limit: int | None = None, pool: str = WORK_POOL) -> dict:
    """Create the work pool (if missing) and set the ``database`` tag concurrency limit.

    Args:
        limit: concurrent ``database`` task runs; default :func:`database_limit`.
        pool: name of the process work pool.

    Returns:
        ``{"work_pool", "work_pool_created", "tag", "limit"}`` as read back from the server.
    """
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.actions import WorkPoolCreate
    from prefect.exceptions import ObjectNotFound

    limit = database_limit() if limit is None else limit
    if limit < 1:
        raise ValueError(f"the database task limit must be >= 1, got {limit}")
    async with get_client() as client:
        try:
            await client.read_work_pool(pool)
            created = False
        except ObjectNotFound:
            await client.create_work_pool(WorkPoolCreate(name=pool, type="process"))
            created = True
        await client.create_concurrency_limit(tag=DATABASE_TAG, concurrency_limit=limit)
        stored = await client.read_concurrency_limit_by_tag(DATABASE_TAG)
    return {"work_pool": pool, "work_pool_created": created, "tag": stored.tag,
            "limit": stored.concurrency_limit}


def bootstrap(limit: int | None = None, pool: str = WORK_POOL) -> dict:
    """Synchronous :func:`abootstrap`."""
    return asyncio.run(abootstrap(limit, pool))


def main(argv: list[str] | None = None) -> None:
    """Command line: ``python -m flows.bootstrap [--database-limit N] [--pool NAME]``."""
    ap = argparse.ArgumentParser(prog="python -m flows.bootstrap", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--database-limit", type=int, default=None,
                    help="concurrent 'database' task runs (default TECHNIC_DB_TASK_CONCURRENCY "
                         f"or {DEFAULT_DATABASE_LIMIT})")
    ap.add_argument("--pool", default=WORK_POOL, help="process work pool to create if missing")
    ap.add_argument("--choices", action="store_true",
                    help="instead: write the run forms (date pickers, the database's sectors "
                         "as choices) into the registered deployments (after `prefect deploy "
                         "--all`)")
    args = ap.parse_args(argv)
    if args.choices:
        from flows.choices import aapply_form_schemas

        print(json.dumps({"sector_choices": asyncio.run(aapply_form_schemas())}))
        return
    print(json.dumps(bootstrap(args.database_limit, args.pool)))


if __name__ == "__main__":  # pragma: no cover
    main()
