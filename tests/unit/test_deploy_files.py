"""docker-compose.yml and prefect.yaml are well-formed (no Docker engine on these machines)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load((REPO / "docker-compose.yml").read_text())


def test_every_service_has_an_image_and_a_healthcheck(compose):
    services = compose["services"]
    assert {"timescaledb", "redis", "prefect-server", "prefect-worker", "dask-scheduler",
            "dask-worker", "dask-worker-gpu"} <= set(services)
    for name, svc in services.items():
        assert "image" in svc or "build" in svc, name
        assert "healthcheck" in svc, name
        for dep, cond in (svc.get("depends_on") or {}).items():
            assert dep in services and cond["condition"] in ("service_healthy",
                                                             "service_started"), name
    assert services["timescaledb"]["image"].startswith("timescale/timescaledb:")


def test_gpu_worker_is_a_profile_with_the_gpu_resource(compose):
    gpu = compose["services"]["dask-worker-gpu"]
    assert gpu["profiles"] == ["gpu"]
    cmd = gpu["command"] if isinstance(gpu["command"], str) else " ".join(gpu["command"])
    assert "--resources" in cmd and "GPU=1" in cmd
    devices = gpu["deploy"]["resources"]["reservations"]["devices"]
    assert devices[0]["driver"] == "nvidia" and "gpu" in devices[0]["capabilities"]


def test_compose_config_when_docker_compose_exists():
    docker = shutil.which("docker")
    if docker is None or subprocess.run([docker, "compose", "version"],
                                        capture_output=True).returncode != 0:
        pytest.skip("docker compose plugin not installed (YAML checks above still ran)")
    r = subprocess.run([docker, "compose", "-f", str(REPO / "docker-compose.yml"), "config",
                        "-q"], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr


def _make_n(*args: str) -> list[str]:
    """The commands ``make up`` would run (``make -n``), one per line."""
    r = subprocess.run(["make", "-n", "up", *args], cwd=REPO, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    return r.stdout.strip().splitlines()


def test_make_up_starts_the_stack_then_creates_the_limit_and_the_deployments(compose):
    cpu = _make_n()
    up = next(line for line in cpu if " up " in line)
    assert up == "docker compose up -d --build --wait"  # the default profile: CPU stack
    assert any("--profile gpu up -d --build --wait" in line for line in _make_n("GPU=1"))
    execs = [line for line in cpu if " exec " in line]
    assert execs == ["docker compose exec -T prefect-worker python -m flows.bootstrap",
                     "docker compose exec -T prefect-worker prefect --no-prompt deploy --all"]
    assert "prefect-worker" in compose["services"]
    env = compose["services"]["prefect-worker"]["environment"]
    assert env["TECHNIC_DB_TASK_CONCURRENCY"] == "${TECHNIC_DB_TASK_CONCURRENCY:-2}"


def test_make_up_says_so_when_docker_compose_is_missing(tmp_path):
    r = subprocess.run(["make", "up", f"COMPOSE={tmp_path / 'no-docker'} compose"], cwd=REPO,
                       capture_output=True, text=True)
    assert r.returncode != 0
    assert "is not available on this machine" in r.stderr and "compose plugin" in r.stderr


def test_readme_shows_make_up_after_the_two_main_commands():
    text = (REPO / "README.md").read_text()
    block = text[text.index("```bash"):]
    first = [line.split("#")[0].strip() for line in block.splitlines()[1:3]]
    assert first == ["make demo", "make test"]
    assert "make up" in text and text.index("make up") > text.index("make test")
