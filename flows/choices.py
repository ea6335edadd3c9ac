"""The deployments' run forms: the sectors stored in the database as choices, dates as dates.

A flow's parameter schema (the JSON schema the Prefect UI draws its run form from) comes from
the flow's signature, so ``sectors: list[str] | None`` would be a free-text list, and every
optional parameter (``X | None``) an ``anyOf`` that the form shows as an "X / None" switch set
to None. :func:`form_schema` makes the optional parameters plain (a date picker, a
multi-select; left empty, the parameter keeps its default None) and gives the sector lists
the sectors that exist. Those are only known from the database, so the schema is written when
a deployment is registered: :func:`flows.serve.runner_deployments` (``python -m flows.serve``)
does it as it builds the deployments, and ``python -m flows.bootstrap --choices`` (run by
``make up`` after ``prefect deploy --all``) patches every deployment on the server. Run the
latter again after new reference data brings new sectors.

Dates need nothing here: the flows type them ``datetime.date``, which the schema carries as
``format: date`` (the UI's date picker) and Prefect validates when the run starts.
"""

from __future__ import annotations

import copy
import logging
from typing import Any

log = logging.getLogger(__name__)

#: Flow parameters that take a list of sectors.
SECTOR_PARAMETERS = ("sectors",)


def sector_choices() -> list[str]:
    """The sectors of the ``symbols`` table of the configured database (``TECHNIC_*``),
    sorted; empty (with a warning) when the database cannot be read or has none, in which
    case the forms keep a free-text list."""
    try:
        from technic.store.catalog import known_sectors
        from technic.store.db import get_engine, resolve_target
        from technic.store.schema import init_db

        target = resolve_target()
        init_db(get_engine(target), target.schema)
        sectors = known_sectors(target)
    except Exception as e:  # noqa: BLE001 - a deployment without choices still works
        log.warning("sector choices not read from the database (%s: %s); the run forms keep "
                    "a free-text sectors list", type(e).__name__, str(e).splitlines()[0])
        return []
    if not sectors:
        log.warning("no sectors in the symbols table yet; the run forms keep a free-text "
                    "sectors list (ingest the reference data, then run "
                    "`python -m flows.bootstrap --choices`)")
    return sectors


def form_schema(schema: dict[str, Any], sectors: list[str]) -> dict[str, Any]:
    """A copy of a parameter schema for the run form: each optional parameter
    (``anyOf: [X, {"type": "null"}]`` with default None) becomes plain ``X`` without a
    default (the form shows X's input, empty; an empty input is not sent, so the flow's
    default None applies), and the sector lists take only ``sectors`` (an ``enum`` on the
    list's items: a multi-select).

    Args:
        schema: a Prefect parameter schema (``{"properties": {...}, ...}``).
        sectors: the allowed sectors; empty: the sector lists stay free text.

    Returns:
        The new schema (the argument is not changed).
    """
    out = copy.deepcopy(schema)
    for prop in (out.get("properties") or {}).values():
        branches = prop.get("anyOf") or []
        plain = [b for b in branches if b.get("type") != "null"]
        if len(branches) == 2 and len(plain) == 1 and prop.get("default", 0) is None:
            del prop["anyOf"], prop["default"]
            prop.update(plain[0])
    if not sectors:
        return out
    for name in SECTOR_PARAMETERS:
        prop = (out.get("properties") or {}).get(name)
        if prop is None:
            continue
        for branch in [prop, *prop.get("anyOf", [])]:
            if branch.get("type") == "array":
                branch["items"] = {"type": "string", "enum": list(sectors)}
                branch["uniqueItems"] = True
    return out


async def aapply_form_schemas(sectors: list[str] | None = None) -> dict[str, int]:
    """Write :func:`form_schema` into every deployment on the Prefect server
    (``PREFECT_API_URL``): plain optional parameters, and the sector choices where the flow
    has a sectors parameter. Idempotent.

    Args:
        sectors: the choices; default :func:`sector_choices`.

    Returns:
        ``{"flow/deployment": number of sector choices}`` for each deployment updated (0:
        no sectors parameter, or none known).
    """
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.actions import DeploymentUpdate

    sectors = sector_choices() if sectors is None else sectors
    done: dict[str, int] = {}
    async with get_client() as client:
        for dep in await client.read_deployments():
            schema = dep.parameter_openapi_schema or {}
            new = form_schema(schema, sectors)
            if new != schema:
                await client.update_deployment(dep.id, DeploymentUpdate(
                    parameter_openapi_schema=new))
            flow = await client.read_flow(dep.flow_id)
            has = any(p in (schema.get("properties") or {}) for p in SECTOR_PARAMETERS)
            done[f"{flow.name}/{dep.name}"] = len(sectors) if has else 0
    return done
