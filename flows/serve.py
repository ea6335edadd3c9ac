"""Serve deployments of ``prefect.yaml`` from this process: no work pool, worker or Docker.

For a workstation, and for the end-to-end test (``tests/e2e/test_e2e_prefect.py``)::

    export PREFECT_API_URL=http://127.0.0.1:4200/api
    python -m flows.serve                    # the on-demand `scan` deployment
    python -m flows.serve scan daily-pipeline --with-schedules

Each deployment keeps the name, entrypoint, description, tags, default parameters and
concurrency limit it has in ``prefect.yaml`` (so the UI shows the same thing as on a server);
its schedules are only attached with ``--with-schedules``. Its run form offers the sectors of
the configured database as choices (:mod:`flows.choices`). Flow runs are subprocesses of this
process, started in the repository root with this process's ``TECHNIC_*`` settings. Stop it
with Ctrl-C (SIGTERM): the served deployments are paused.
"""

from __future__ import annotations

import argparse
import importlib
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parents[1]


def deployment_specs(path: Path = REPO / "prefect.yaml") -> dict[str, dict[str, Any]]:
    """The deployments of a Prefect project file, by name."""
    return {d["name"]: d for d in yaml.safe_load(path.read_text())["deployments"]}


def load_flow(entrypoint: str) -> Any:
    """The flow object of an entrypoint ``flows/jobs.py:scan`` (a module under this repo).

    Raises:
        ValueError: the entrypoint does not name a Prefect flow.
    """
    path, _, name = entrypoint.partition(":")
    module = importlib.import_module(path.removesuffix(".py").replace("/", "."))
    obj = getattr(module, name, None)
    if obj is None or not hasattr(obj, "to_deployment"):
        raise ValueError(f"{entrypoint} is not a Prefect flow")
    return obj


def runner_deployments(names: list[str], with_schedules: bool = False,
                       path: Path = REPO / "prefect.yaml",
                       sectors: list[str] | None = None) -> list[Any]:
    """``RunnerDeployment`` objects for these ``prefect.yaml`` deployments.

    Args:
        names: deployment names of the project file.
        with_schedules: attach their schedules.
        path: the project file.
        sectors: the choices of the ``sectors`` parameters in the run form
            (:func:`flows.choices.form_schema`); None or empty: free text.

    Raises:
        ValueError: a name is not in the project file.
    """
    from prefect.schedules import Cron
    from prefect.utilities.callables import ParameterSchema

    from flows.choices import form_schema

    specs = deployment_specs(path)
    unknown = [n for n in names if n not in specs]
    if unknown:
        raise ValueError(f"not in {path.name}: {', '.join(unknown)}; known: {', '.join(specs)}")
    out = []
    for name in names:
        spec = specs[name]
        schedules = [Cron(s["cron"], timezone=s.get("timezone"), active=s.get("active", True))
                     for s in spec.get("schedules") or []] if with_schedules else None
        dep = load_flow(spec["entrypoint"]).to_deployment(
            name=name, description=spec.get("description"), tags=spec.get("tags"),
            parameters=spec.get("parameters") or {}, schedules=schedules,
            concurrency_limit=spec.get("concurrency_limit"))
        # the run form (what `prefect deploy` does with a computed schema: a private field)
        dep._parameter_openapi_schema = ParameterSchema(**form_schema(
            dep._parameter_openapi_schema.model_dump(), sectors or []))
        out.append(dep)
    return out


def main(argv: list[str] | None = None) -> None:
    """Command line: ``python -m flows.serve [NAME ...] [--with-schedules] [--limit N]``."""
    from prefect import serve

    from flows.choices import sector_choices

    ap = argparse.ArgumentParser(prog="python -m flows.serve", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("names", nargs="*", default=["scan"],
                    help="deployment names from prefect.yaml (default: scan)")
    ap.add_argument("--with-schedules", action="store_true",
                    help="attach the schedules of prefect.yaml (default: on demand only)")
    ap.add_argument("--limit", type=int, default=None,
                    help="at most this many flow runs at once in this process")
    args = ap.parse_args(argv)
    serve(*runner_deployments(args.names, args.with_schedules, sectors=sector_choices()),
          limit=args.limit)


if __name__ == "__main__":  # pragma: no cover
    main()
