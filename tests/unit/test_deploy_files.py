"""docker-compose.yml and prefect.yaml are well-formed and safe by default (no Docker engine on
these machines: the compose file is checked as YAML, with compose's variable interpolation
reproduced here)."""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import sys
import time
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


def test_compose_config_when_docker_compose_exists(tmp_path):
    docker = shutil.which("docker")
    if docker is None or subprocess.run([docker, "compose", "version"],
                                        capture_output=True).returncode != 0:
        pytest.skip("docker compose plugin not installed (YAML checks above still ran)")
    base = [docker, "compose", "--project-directory", str(tmp_path), "-f",
            str(REPO / "docker-compose.yml")]
    clean = {k: v for k, v in os.environ.items() if k not in REQUIRED}
    r = subprocess.run([*base, "config", "-q"], capture_output=True, text=True, env=clean)
    assert r.returncode != 0 and any(f"set {n} in .env" in r.stderr for n in REQUIRED)
    env = {**clean, **{k: "x" * 24 for k in REQUIRED}}
    for files in ([], ["-f", str(REPO / "infra" / "compose.host-ports.yml")]):
        r = subprocess.run([*base, *files, "config", "-q"], capture_output=True, text=True,
                           env=env)
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
                     "docker compose exec -T prefect-worker prefect --no-prompt deploy --all",
                     "docker compose exec -T prefect-worker python -m flows.bootstrap --choices"]
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


# ----------------------------------------------------------------------------- security

#: The secrets of .env.example: compose must refuse to start without each of them.
REQUIRED = ("TECHNIC_DB_PASSWORD", "PREFECT_DB_PASSWORD", "TECHNIC_REDIS_PASSWORD",
            "TECHNIC_CACHE_SECRET", "PREFECT_API_AUTH_STRING")
_VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?[-?])([^}]*))?\}")


def interpolate(value: str, env: dict[str, str]) -> str:
    """Compose's interpolation of one string: ``${V}``, ``${V:-default}``, ``${V-default}``,
    ``${V:?error}``, ``${V?error}``; ``$$`` is a literal ``$``.

    Raises:
        KeyError: a required variable is unset (or empty, for ``:?``), with its message.
    """
    def one(m: re.Match) -> str:
        name, op, arg = m.group(1), m.group(2), m.group(3)
        v = env.get(name)
        missing = v is None or (v == "" and op is not None and op.startswith(":"))
        if op in (":?", "?") and missing:
            raise KeyError(f"{name}: {arg}")
        if op in (":-", "-") and missing:
            return arg
        return v or ""

    parts = value.split("$$")
    return "$".join(_VAR.sub(one, p) for p in parts)


def _strings(node, path=""):
    """Every string in a YAML tree, with its path."""
    if isinstance(node, dict):
        for k, v in node.items():
            yield from _strings(v, f"{path}/{k}")
    elif isinstance(node, list):
        for i, v in enumerate(node):
            yield from _strings(v, f"{path}[{i}]")
    elif isinstance(node, str):
        yield path, node


def _published(svc: dict, env: dict[str, str] | None = None) -> list[tuple[str, str]]:
    """(host address, container port) of each published port, as compose resolves it with
    ``env`` ("" = every interface)."""
    out = []
    for p in svc.get("ports") or []:
        if isinstance(p, dict):
            out.append((interpolate(str(p.get("host_ip", "")), env or {}), str(p["target"])))
            continue
        # "[host_ip:]host_port:container_port[/proto]"
        m = re.fullmatch(r"(?:([0-9.]+|\[[0-9a-f:]*\]):)?([0-9-]*):([0-9-]+)(?:/\w+)?",
                         interpolate(str(p), env or {}))
        assert m, f"cannot parse port {p!r}"
        out.append((m.group(1) or "", m.group(3)))
    return out


@pytest.fixture(scope="module")
def overlay() -> dict:
    return yaml.safe_load((REPO / "infra" / "compose.host-ports.yml").read_text())


def test_only_the_prefect_ui_and_the_api_are_published_and_on_loopback(compose, overlay):
    services = compose["services"]
    published = {name: _published(svc) for name, svc in services.items() if svc.get("ports")}
    assert set(published) == {"prefect-server", "api"}
    assert published["api"] == [("127.0.0.1", "8000")]
    cmd = services["api"]["command"]
    assert cmd[:2] == ["technic", "serve"]  # 0.0.0.0 inside its container, loopback outside
    for name in ("dask-scheduler", "dask-worker", "dask-worker-gpu", "redis", "timescaledb",
                 "prefect-db"):
        assert not services[name].get("ports") and not services[name].get("network_mode"), name
    # the opt-in overlay publishes PostgreSQL and Redis only, on 127.0.0.1 only
    extra = {name: _published(svc) for name, svc in overlay["services"].items()}
    assert set(extra) == {"timescaledb", "redis"}
    for name, ports in [*published.items(), *extra.items()]:
        for host, _ in ports:
            assert host == "127.0.0.1", f"{name}: published on {host or 'every interface'}"
    moved = _published(services["prefect-server"], {"TECHNIC_BIND_ADDRESS": "10.0.0.5"})
    assert moved == [("10.0.0.5", "4200")]  # a deliberate choice, documented with its caveat
    assert not any(p in ("8786", "8787") for ports in [*published.values(), *extra.values()]
                   for _, p in ports)


def test_no_default_passwords(compose, overlay):
    for path, value in _strings(compose):
        for m in _VAR.finditer(value.replace("$$", "")):
            name, op, arg = m.groups()
            if re.search(r"PASSWORD|SECRET|AUTH|KEY", name):
                # optional API keys: unset means the feature is off (no Polygon ingest; a
                # read-only HTTP API), never a default key
                optional = name in ("TECHNIC_POLYGON_API_KEY", "TECHNIC_API_KEY") \
                    and op == ":-" and arg == ""
                assert op == ":?" or optional, f"{path}: ${{{name}{op or ''}{arg or ''}}}"
    # no literal credentials either: every password/secret value comes from a variable
    for path, value in _strings(compose):
        if re.search(r"PASSWORD|SECRET|AUTH_STRING", path.rsplit("/", 1)[-1]):
            assert value.startswith("${") and value.endswith("}"), path
    urls = {v for _, v in _strings(compose) if re.match(r"(postgresql\+\w+|redis)://", v)}
    assert len(urls) == 3  # technic's database and Redis, Prefect's database
    for url in urls:
        assert re.search(r":\$\{[A-Z_]+:\?[^}]*\}@", url), url  # user:${PASSWORD:?…}@host
    # with any one secret unset or empty, interpolation fails naming it
    full = {name: "x" * 24 for name in REQUIRED}
    for name in REQUIRED:
        for gap in ({k: v for k, v in full.items() if k != name}, {**full, name: ""}):
            with pytest.raises(KeyError, match=f"{name}: set {name} in .env"):
                for _, value in _strings(compose):
                    interpolate(value, gap)
    for _, value in [*_strings(compose), *_strings(overlay)]:
        interpolate(value, full)  # all set: nothing missing


def test_secrets_reach_the_services_that_need_them(compose):
    s = compose["services"]
    env = compose["x-technic-env"]
    assert "${TECHNIC_REDIS_PASSWORD:?" in env["TECHNIC_REDIS_URL"]
    assert env["TECHNIC_CACHE_SECRET"].startswith("${TECHNIC_CACHE_SECRET:?")
    assert env["PREFECT_API_AUTH_STRING"].startswith("${PREFECT_API_AUTH_STRING:?")
    for name in ("prefect-worker", "dask-worker", "dask-worker-gpu", "api"):
        e = s[name]["environment"]
        assert e["TECHNIC_CACHE_SECRET"] == env["TECHNIC_CACHE_SECRET"], name
    assert "environment" not in s["dask-scheduler"]  # runs no technic code: no secrets
    server = s["prefect-server"]["environment"]
    assert server["PREFECT_SERVER_API_AUTH_STRING"] == env["PREFECT_API_AUTH_STRING"]
    assert s["redis"]["environment"]["REDISCLI_AUTH"].startswith("${TECHNIC_REDIS_PASSWORD:?")
    assert s["timescaledb"]["environment"]["POSTGRES_PASSWORD"].startswith(
        "${TECHNIC_DB_PASSWORD:?")
    assert s["prefect-db"]["environment"]["POSTGRES_PASSWORD"].startswith(
        "${PREFECT_DB_PASSWORD:?")


def test_env_example_lists_every_required_secret_empty(compose):
    example = (REPO / ".env.example").read_text()
    values = dict(line.split("=", 1) for line in example.splitlines()
                  if line and not line.startswith("#"))
    required = {m.group(1) for _, v in _strings(compose) for m in _VAR.finditer(v)
                if m.group(2) == ":?"}
    assert required == set(REQUIRED) == set(values)
    assert all(v == "" for v in values.values())  # a template, never a working secret
    tracked = subprocess.run(["git", "ls-files", ".env"], cwd=REPO, capture_output=True,
                             text=True).stdout
    assert tracked == ""
    ignored = subprocess.run(["git", "check-ignore", "-q", ".env"], cwd=REPO)
    assert ignored.returncode == 0
    assert ".env" in (REPO / ".dockerignore").read_text().splitlines()  # not in build context


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.mark.skipif(shutil.which("redis-server") is None, reason="redis-server not installed")
def test_redis_command_requires_the_password_and_keeps_it_off_the_command_line(compose,
                                                                               tmp_path):
    """The compose command of the redis service, run by sh as in the container (the image's
    entrypoint stubbed: it only adds a free loopback port and no persistence)."""
    import redis

    port = _free_port()
    stub = tmp_path / "docker-entrypoint.sh"
    stub.write_text(f'#!/bin/sh\nexec "$@" --port {port} --bind 127.0.0.1 --save "" '
                    f'--appendonly no --dir {tmp_path}\n')
    stub.chmod(0o755)
    password = "0123456789abcdef0123456789abcdef"
    argv = [interpolate(a, {}) for a in compose["services"]["redis"]["command"]]
    env = {**os.environ, "PATH": f"{tmp_path}:{os.environ['PATH']}", "REDISCLI_AUTH": password}
    proc = subprocess.Popen(argv, env=env, cwd=tmp_path, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    try:
        anonymous = redis.Redis(port=port, socket_timeout=2)
        for _ in range(100):
            try:
                anonymous.ping()
                pytest.fail("redis answered without a password")
            except redis.AuthenticationError:
                break
            except redis.ConnectionError:
                time.sleep(0.05)
        else:
            pytest.fail("redis-server did not start")
        assert redis.Redis.from_url(f"redis://:{password}@127.0.0.1:{port}/0").ping()
        cmdline = Path(f"/proc/{proc.pid}/cmdline").read_bytes()
        assert b"redis-server" in cmdline and password.encode() not in cmdline
        health = compose["services"]["redis"]["healthcheck"]["test"]
        assert health[0] == "CMD-SHELL"
        ok = subprocess.run(["sh", "-c", health[1].replace("redis-cli", f"redis-cli -p {port}")],
                            env=env)
        bad = subprocess.run(["sh", "-c", health[1].replace("redis-cli", f"redis-cli -p {port}")],
                             env={**env, "REDISCLI_AUTH": "wrong"})
        assert ok.returncode == 0 and bad.returncode != 0
    finally:
        proc.terminate()
        proc.wait(10)


_CLIENT = """
import sys
from technic.compute import dask_client
try:
    with dask_client() as c:
        print("RESULT", c.submit(sum, [20, 22]).result(timeout=30))
except Exception as e:
    print("REFUSED", type(e).__name__)
"""


@pytest.mark.skipif(shutil.which("openssl") is None, reason="openssl not installed")
def test_dask_tls_recipe_of_the_docs_admits_only_certified_clients(tmp_path):
    """docs/operations.md, "Dask across hosts (TLS)": CA and certificates made with its
    openssl commands, scheduler and worker started with its flags, technic's client
    configured by its environment variables."""
    def sh(*args: str) -> None:
        subprocess.run(args, cwd=tmp_path, check=True, capture_output=True)

    sh("openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj",
       "/CN=technic-dask-ca", "-keyout", "ca-key.pem", "-out", "ca.pem")
    for role in ("scheduler", "worker", "client"):
        sh("openssl", "req", "-newkey", "rsa:2048", "-nodes", "-subj", f"/CN=technic-dask-{role}",
           "-keyout", f"{role}-key.pem", "-out", f"{role}.csr")
        sh("openssl", "x509", "-req", "-in", f"{role}.csr", "-CA", "ca.pem", "-CAkey",
           "ca-key.pem", "-CAcreateserial", "-days", "2", "-out", f"{role}.pem")
    bindir = Path(sys.executable).parent
    port = _free_port()
    tls = ["--tls-ca-file", "ca.pem"]
    procs = [subprocess.Popen([str(bindir / "dask"), "scheduler", "--host", "tls://127.0.0.1",
                               "--port", str(port), "--no-dashboard", *tls, "--tls-cert",
                               "scheduler.pem", "--tls-key", "scheduler-key.pem"],
                              cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)]
    try:
        time.sleep(1.0)
        procs.append(subprocess.Popen(
            [str(bindir / "dask"), "worker", f"tls://127.0.0.1:{port}", "--nworkers", "1",
             "--nthreads", "1", "--no-dashboard", *tls, "--tls-cert", "worker.pem",
             "--tls-key", "worker-key.pem"], cwd=tmp_path, stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL))
        base = {k: v for k, v in os.environ.items() if not k.startswith("DASK_")}
        base["PYTHONPATH"] = str(REPO)
        certified = {**base, "TECHNIC_DASK_ADDRESS": f"tls://127.0.0.1:{port}",
                     "DASK_DISTRIBUTED__COMM__REQUIRE_ENCRYPTION": "True",
                     "DASK_DISTRIBUTED__COMM__TLS__CA_FILE": str(tmp_path / "ca.pem"),
                     "DASK_DISTRIBUTED__COMM__TLS__CLIENT__CERT": str(tmp_path / "client.pem"),
                     "DASK_DISTRIBUTED__COMM__TLS__CLIENT__KEY": str(tmp_path / "client-key.pem")}

        def client(env: dict) -> str:
            r = subprocess.run([sys.executable, "-c", _CLIENT], env=env, capture_output=True,
                               text=True, timeout=120)
            return r.stdout.strip().splitlines()[-1] if r.stdout.strip() else r.stderr[-300:]

        assert client(certified) == "RESULT 42"
        # without a certificate, or in plain TCP, nothing runs
        no_cert = {k: v for k, v in certified.items() if "__CLIENT__" not in k}
        assert client(no_cert).startswith("REFUSED")
        plain = {**base, "TECHNIC_DASK_ADDRESS": f"tcp://127.0.0.1:{port}"}
        assert client(plain).startswith("REFUSED")
    finally:
        for p in reversed(procs):
            p.terminate()
            p.wait(20)
