"""Fixtures of the ``technic serve`` tests: a running server (uvicorn in a subprocess on a
free loopback port) over the ``demo_target`` schema, with one default scan stored first;
shared by the HTTP API tests and the web page tests."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.conftest import cli_env

REPO = Path(__file__).resolve().parents[3]
API_KEY = "test-key-" + os.urandom(8).hex()


@dataclass
class Server:
    url: str
    run_id: int  # the default scan stored before the server started
    target: object
    log: Path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def api_server(db_url, demo_target, tmp_path_factory):
    from technic.jobs.scan import ScanParams, run_scan

    run_id = run_scan(demo_target, ScanParams()).run_id
    port = free_port()
    log = tmp_path_factory.mktemp("serve") / "serve.log"
    env = cli_env(db_url, demo_target.schema, TECHNIC_API_KEY=API_KEY,
                  PYTHONPATH=os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]))
    with log.open("w") as out:
        proc = subprocess.Popen([sys.executable, "-m", "technic.cli", "serve", "--port",
                                 str(port), "--log-level", "warning"], env=env, stdout=out,
                                stderr=subprocess.STDOUT, cwd=REPO)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"{url}/v1/health", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"technic serve did not start:\n{log.read_text()[-2000:]}")
            time.sleep(0.2)
        yield Server(url, run_id, demo_target, log)
    finally:
        proc.terminate()
        try:
            proc.wait(60)
        except subprocess.TimeoutExpired:
            proc.kill()
