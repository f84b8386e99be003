"""The deployment files, checked without a Docker engine: Debian's docker-compose parses and validates
docker-compose.yml (GPU reservations included), and the Dockerfile's steps are checked against the
project (files it copies, extras it installs, the command and health route it uses)."""

from __future__ import annotations

import re
import shutil
import subprocess
import tomllib

import pytest
import yaml

from conftest import REPO
from rag.settings import Settings

COMPOSE = REPO / "docker-compose.yml"
ENV_EXAMPLE = REPO / ".env.example"
DOCKERFILE = REPO / "Dockerfile"


def _config(*extra: str) -> dict:
    exe = shutil.which("docker-compose")
    if exe is None:
        pytest.skip("Debian's docker-compose is not installed (scripts/test.sh installs it)")
    run = subprocess.run([exe, "-f", str(COMPOSE), *extra, "config"], cwd=REPO, capture_output=True, text=True,
                         timeout=120)
    assert run.returncode == 0, run.stderr
    return yaml.safe_load(run.stdout)


def test_compose_file_is_valid_and_wires_the_services():
    cfg = _config()
    services = cfg["services"]
    assert {"vllm", "chroma", "postgres", "app", "app-cpu"} <= set(services)
    vllm = services["vllm"]
    assert vllm["image"].startswith("vllm/vllm-openai")
    assert "--model=Qwen/Qwen2.5-7B-Instruct" in vllm["command"]
    gpu = vllm["deploy"]["resources"]["reservations"]["devices"][0]
    assert gpu["driver"] == "nvidia" and "gpu" in gpu["capabilities"]
    assert any("model-cache" in str(v) for v in vllm["volumes"])
    app = services["app"]
    assert {k: v["condition"] for k, v in app["depends_on"].items()} == {
        "vllm": "service_healthy", "chroma": "service_healthy", "postgres": "service_healthy"}
    for name in ("vllm", "chroma", "postgres", "app"):
        assert services[name]["healthcheck"]["test"], name
    env = app["environment"]
    assert env["RAGKB_LLM_BASE_URL"] == "http://vllm:8000/v1" and env["RAGKB_CHROMA_URL"] == "http://chroma:8000"
    assert env["RAGKB_DATABASE_URL"].startswith("postgresql+psycopg://")
    assert any(p.get("target") == 7860 or str(p).endswith("7860") for p in app["ports"])
    assert services["app-cpu"]["profiles"] == ["cpu"]


def test_env_example_documents_every_variable_and_is_accepted():
    used = set(re.findall(r"\$\{([A-Z0-9_]+)", COMPOSE.read_text()))
    documented = {ln.split("=", 1)[0] for ln in ENV_EXAMPLE.read_text().splitlines() if re.match(r"^[A-Z0-9_]+=", ln)}
    assert used - documented == set(), f"undocumented in .env.example: {sorted(used - documented)}"
    cfg = _config("--env-file", str(ENV_EXAMPLE))
    assert cfg["services"]["vllm"]["deploy"]["replicas"] == 1
    # every RAGKB_ variable the compose file sets is a real setting (a typo would be silently ignored)
    fields = {f"RAGKB_{name.upper()}" for name in Settings.model_fields}
    for svc in cfg["services"].values():
        for key in (svc.get("environment") or {}):
            if key.startswith("RAGKB_"):
                assert key in fields, key


def test_dockerfile_steps_match_the_project():
    text = DOCKERFILE.read_text()
    for src in re.findall(r"^COPY (\S+)", text, flags=re.M):
        assert (REPO / src).exists(), f"Dockerfile copies {src}, which does not exist"
    project = tomllib.loads((REPO / "pyproject.toml").read_text())
    extras = set(project["project"]["optional-dependencies"])
    default = re.search(r"^ARG EXTRAS=(\S+)", text, flags=re.M).group(1)
    compose_extras = re.findall(r"EXTRAS: (\S+)", COMPOSE.read_text())
    for spec in [default, *compose_extras]:
        assert set(spec.split(",")) <= extras, spec
    assert 'CMD ["ragkb", "serve"]' in text and "ragkb" in project["project"]["scripts"]
    assert "torch==2.13.0" in text and "download.pytorch.org/whl/cpu" in text  # no CUDA build in the app image
    assert "RAGKB_HOST=0.0.0.0" in text and "EXPOSE 7860" in text
    assert "/api/health" in text


def test_health_route_used_by_the_containers_exists(tmp_path):
    from fastapi.testclient import TestClient

    from app.server import create_app

    client = TestClient(create_app(settings=Settings(data_dir=tmp_path / "data", _env_file=None), ui=False))
    assert client.get("/api/health").json()["status"] == "ok"
