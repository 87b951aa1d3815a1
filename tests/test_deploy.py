"""The team deployment: docker-compose.yml, Dockerfile, .dockerignore and .env.example (docs/deploy.md).

Static checks with PyYAML (no Docker engine needed), plus `docker compose config` where the docker CLI
and its compose plugin are installed (skipped, with the reason, where they are not).
"""

from __future__ import annotations

import re
import shlex
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from core.settings import Settings

REPO = Path(__file__).resolve().parents[1]
COMPOSE = REPO / "docker-compose.yml"
DOCKERFILE = REPO / "Dockerfile"
DOCKERIGNORE = REPO / ".dockerignore"
ENV_EXAMPLE = REPO / ".env.example"
DEPLOY_DOC = REPO / "docs" / "deploy.md"

# ${VAR}, ${VAR:-default}, ${VAR-default}, ${VAR:?error}, ${VAR:+alt}
_VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?[-?+])([^}]*))?\}")
# ZHIWEN_* variables that are not Settings fields but are read by core.settings all the same.
_NON_FIELD_ZHIWEN_VARS = {"ZHIWEN_CONFIG"}


def _compose_text() -> str:
    return COMPOSE.read_text(encoding="utf-8")


def _compose() -> dict:
    return yaml.safe_load(_compose_text())


def _services() -> dict[str, dict]:
    return _compose()["services"]


def _env_example() -> dict[str, str]:
    values: dict[str, str] = {}
    for line in ENV_EXAMPLE.read_text(encoding="utf-8").splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        key, sep, value = line.partition("=")
        assert sep, f".env.example: not KEY=VALUE: {line!r}"
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
            value = value[1:-1]
        values[key.strip()] = value
    return values


def _resolve(value, env: dict[str, str] | None = None):
    """Compose-style interpolation of ``${VAR:-default}`` (env first, then the default)."""
    env = env or {}
    if not isinstance(value, str):
        return value

    def sub(m: re.Match) -> str:
        name, op, arg = m.group(1), m.group(2) or "", m.group(3) or ""
        if name in env and (env[name] or not op.startswith(":")):
            return env[name] if "+" not in op else arg
        return arg if "-" in op else ""

    return _VAR.sub(sub, value)


def _environment(service: dict) -> dict[str, str]:
    env = service.get("environment") or {}
    if isinstance(env, list):
        env = dict(item.split("=", 1) if "=" in item else (item, "") for item in env)
    return {str(k): "" if v is None else str(v) for k, v in env.items()}


def _command_args(service: dict, env: dict[str, str] | None = None) -> list[str]:
    command = service.get("command") or []
    if isinstance(command, str):
        return shlex.split(_resolve(command, env))
    return [_resolve(str(arg), env) for arg in command]


def _one_shot(name: str, services: dict[str, dict]) -> bool:
    """Init jobs: restart "no" and waited on with service_completed_successfully."""
    for other in services.values():
        deps = other.get("depends_on") or {}
        if isinstance(deps, dict) and (deps.get(name) or {}).get("condition") == "service_completed_successfully":
            return True
    return False


# --- the compose file's shape -------------------------------------------------------------------------


def test_compose_file_uses_the_compose_spec_and_has_the_stack():
    compose = _compose()
    assert "version" not in compose, "the compose spec has no `version:` key"
    assert {"etcd", "minio", "milvus", "vllm", "zhiwen-ui", "zhiwen-api"} <= set(compose["services"])
    # The zhiwen services run commands the CLI really has.
    from typer.main import get_command

    from app.cli import app as cli_app

    commands = set(get_command(cli_app).commands)
    for name, service in compose["services"].items():
        args = _command_args(service)
        if args[:1] == ["zhiwen"]:
            assert args[1] in commands, f"{name}: `zhiwen {args[1]}` is not a command"


def test_every_image_is_pinned_or_built():
    for name, service in _services().items():
        image = _resolve(service.get("image"))
        if not image:
            assert "build" in service, f"{name}: neither image nor build"
            continue
        if "@sha256:" in image:
            continue
        last = image.rsplit("/", 1)[-1]
        assert ":" in last, f"{name}: image {image!r} has no tag"
        tag = last.split(":", 1)[1]
        assert tag and tag != "latest", f"{name}: image {image!r} is not pinned"


def test_every_long_running_service_has_a_healthcheck():
    services = _services()
    for name, service in services.items():
        if _one_shot(name, services):
            continue
        check = service.get("healthcheck") or {}
        assert not check.get("disable"), f"{name}: healthcheck disabled"
        test = check.get("test")
        assert test and test not in (["NONE"], "NONE"), f"{name}: no healthcheck"


def test_depends_on_targets_exist_and_healthy_ones_have_healthchecks():
    services = _services()
    for name, service in services.items():
        deps = service.get("depends_on") or {}
        for target in deps:
            assert target in services, f"{name} depends on unknown service {target}"
            if isinstance(deps, dict) and deps[target].get("condition") == "service_healthy":
                assert services[target].get("healthcheck"), f"{name} waits for {target}, which has no healthcheck"


def test_named_volumes_are_declared_and_stateful_services_use_them():
    compose = _compose()
    declared = set(compose.get("volumes") or {})
    assert declared, "no top-level volumes"
    used = set()
    for name, service in compose["services"].items():
        for volume in service.get("volumes") or []:
            source = volume.get("source", "") if isinstance(volume, dict) else str(volume).split(":", 1)[0]
            if source and not source.startswith((".", "/", "~", "$")):
                assert source in declared, f"{name}: volume {source!r} is not declared"
                used.add(source)
    assert used == declared, f"declared but unused volumes: {sorted(declared - used)}"
    for name, target in {"etcd": "/etcd", "minio": "/minio_data", "milvus": "/var/lib/milvus", "zhiwen-ui": "/data"}.items():
        mounts = [str(v) for v in compose["services"][name].get("volumes") or []]
        assert any(m.split(":")[1] == target and not m.startswith(".") for m in mounts), f"{name}: no named volume at {target}"


def test_milvus_standalone_wiring():
    services = _services()
    milvus = services["milvus"]
    assert _command_args(milvus) == ["milvus", "run", "standalone"]
    env = _environment(milvus)
    assert env["ETCD_ENDPOINTS"] == "etcd:2379"
    assert env["MINIO_ADDRESS"] == "minio:9000"
    assert milvus["depends_on"]["etcd"]["condition"] == "service_healthy"
    assert milvus["depends_on"]["minio"]["condition"] == "service_healthy"


def test_vllm_serves_the_base_model_and_lora_adapters_on_a_gpu():
    vllm = _services()["vllm"]
    assert vllm["image"].startswith("vllm/vllm-openai:")
    devices = vllm["deploy"]["resources"]["reservations"]["devices"]
    assert devices == [{"driver": "nvidia", "count": 1, "capabilities": ["gpu"]}]
    assert "./models:/models:ro" in vllm["volumes"]
    assert "./adapters:/adapters:ro" in vllm["volumes"]
    example = _env_example()
    args = _command_args(vllm, example)
    joined = " ".join(args)
    assert f"--model /models/{example['BASE_MODEL']}" in joined
    assert "--served-model-name zhiwen" in joined
    assert "--enable-lora" in args
    assert "--max-lora-rank 64" in joined
    # Every adapter (the default and .env.example's) is name=/adapters/name, one argument each.
    for env in ({}, example):
        args = _command_args(vllm, env)
        adapters = args[args.index("--lora-modules") + 1 :]
        adapters = adapters[: next((i for i, a in enumerate(adapters) if a.startswith("--")), len(adapters))]
        assert adapters
        for adapter in adapters:
            assert re.fullmatch(r"([\w.-]+)=/adapters/\1", adapter), adapter
    assert "/health" in " ".join(vllm["healthcheck"]["test"])


def test_zhiwen_ui_wiring():
    ui = _services()["zhiwen-ui"]
    assert "build" in ui
    assert _command_args(ui) == ["zhiwen", "ui", "--host", "0.0.0.0", "--port", "8501"]
    assert any(str(p).endswith(":8501") for p in ui["ports"])
    assert any(str(v).endswith(":/data") for v in ui["volumes"])
    env = _environment(ui)
    assert env["ZHIWEN_DATA_DIR"] == "/data"
    assert env["ZHIWEN_VECTOR_STORE"] == "milvus"
    assert env["ZHIWEN_MILVUS_URI"] == "http://milvus:19530"
    assert env["ZHIWEN_LLM_BASE_URL"] == "http://vllm:8000/v1"
    assert env["ZHIWEN_LLM_MODEL"] == "${ZHIWEN_LLM_MODEL:-zhiwen}"
    assert ui["depends_on"]["milvus"]["condition"] == "service_healthy"
    assert ui["depends_on"]["vllm"]["condition"] == "service_healthy"


# --- variables ----------------------------------------------------------------------------------------


def _zhiwen_vars_used() -> dict[str, str]:
    """Every ZHIWEN_* name in the compose file, .env.example and the Dockerfile -> where it was seen."""
    found: dict[str, str] = {}
    for name, service in _services().items():
        for key in _environment(service):
            if key.startswith("ZHIWEN_"):
                found.setdefault(key, f"docker-compose.yml ({name})")
    for m in _VAR.finditer(_compose_text()):
        if m.group(1).startswith("ZHIWEN_"):
            found.setdefault(m.group(1), "docker-compose.yml (${...})")
    for key in _env_example():
        if key.startswith("ZHIWEN_"):
            found.setdefault(key, ".env.example")
    for m in re.finditer(r"\b(ZHIWEN_[A-Z0-9_]+)=", DOCKERFILE.read_text(encoding="utf-8")):
        found.setdefault(m.group(1), "Dockerfile")
    return found


def test_every_zhiwen_variable_is_a_real_setting():
    used = _zhiwen_vars_used()
    assert "ZHIWEN_DATA_DIR" in used
    fields = set(Settings.model_fields)
    unknown = {
        var: where
        for var, where in used.items()
        if var not in _NON_FIELD_ZHIWEN_VARS and var.removeprefix("ZHIWEN_").lower() not in fields
    }
    assert not unknown, f"not fields of core.settings.Settings: {unknown}"


def test_ui_environment_is_valid_settings(monkeypatch, tmp_path):
    """The UI service's environment, interpolated from .env.example, loads as Settings."""
    env = {k: _resolve(v, _env_example()) for k, v in _environment(_services()["zhiwen-ui"]).items()}
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("ZHIWEN_DATA_DIR", str(tmp_path))  # /data may not exist here
    settings = Settings()
    assert settings.llm_base_url == "http://vllm:8000/v1"
    assert settings.llm_model == _env_example()["ZHIWEN_LLM_MODEL"]
    for key, value in env.items():
        field = key.removeprefix("ZHIWEN_").lower()
        if field in ("vector_store", "milvus_uri") and field in Settings.model_fields:
            assert str(getattr(settings, field)) == value


def test_env_example_lists_exactly_the_compose_variables():
    in_compose = {m.group(1) for m in _VAR.finditer(_compose_text())}
    in_example = set(_env_example())
    assert in_compose - in_example == set(), "used by docker-compose.yml but missing from .env.example"
    assert in_example - in_compose == set(), "in .env.example but unused by docker-compose.yml"
    # Every variable has a default in the compose file, so it also runs without a .env.
    for m in _VAR.finditer(_compose_text()):
        assert m.group(2) == ":-", f"${{{m.group(1)}}} has no :-default"
    # Comments in Chinese and English.
    text = ENV_EXAMPLE.read_text(encoding="utf-8")
    assert re.search(r"[\u4e00-\u9fff]", text) and re.search(r"\bthe\b", text)


# --- the image ----------------------------------------------------------------------------------------


def test_dockerfile_builds_a_cpu_image_that_runs_the_ui_as_non_root():
    text = DOCKERFILE.read_text(encoding="utf-8")
    froms = re.findall(r"^FROM\s+(\S+)", text, flags=re.M)
    assert froms and all(f == "python:3.11-slim" for f in froms)
    assert "torch==2.13.0 --index-url https://download.pytorch.org/whl/cpu" in text
    torch_at = text.index("pip install torch")
    assert torch_at < text.index('pip install ".[milvus,ocr]"'), "torch (CPU) must be installed first"
    users = re.findall(r"^USER\s+(\S+)", text, flags=re.M)
    assert users and users[-1] not in ("root", "0")
    assert re.search(r"^WORKDIR\s+/app\s*$", text, flags=re.M)
    assert re.search(r"^EXPOSE\s+8501\s*$", text, flags=re.M)
    assert '"zhiwen", "ui", "--host", "0.0.0.0", "--port", "8501"' in text.split("CMD", 1)[-1]


def test_dockerignore_keeps_the_build_context_small():
    patterns = {
        line.strip() for line in DOCKERIGNORE.read_text(encoding="utf-8").splitlines() if line.strip() and not line.startswith("#")
    }
    assert {".venv", "data", "models", "adapters", ".pytest_cache", ".git"} <= patterns
    # pip install . needs these in the context.
    assert not patterns & {"pyproject.toml", "README.md", "core", "app"}


def test_deploy_doc_gives_the_commands():
    text = DEPLOY_DOC.read_text(encoding="utf-8")
    for needle in ("cp .env.example .env", "./models", "./adapters", "docker compose up -d", "faiss-gpu", "API"):
        assert needle in text, needle


# --- docker compose config ----------------------------------------------------------------------------


def _compose_cli() -> list[str]:
    docker = shutil.which("docker")
    if docker:
        try:
            probe = subprocess.run([docker, "compose", "version"], capture_output=True, text=True, timeout=30)
        except (OSError, subprocess.TimeoutExpired) as exc:
            pytest.skip(f"`docker compose version` failed: {exc}")
        if probe.returncode == 0:
            return [docker, "compose"]
        said = " ".join((probe.stderr or probe.stdout).split())[:300]
        reason = f"docker compose plugin missing ({said})"
    else:
        reason = "docker CLI missing"
    standalone = shutil.which("docker-compose")  # compose v2 as a standalone binary also does
    if standalone:
        probe = subprocess.run([standalone, "version", "--short"], capture_output=True, text=True, timeout=30)
        if probe.returncode == 0 and re.match(r"v?([2-9]|\d\d)\.", probe.stdout.strip()):
            return [standalone]
    pytest.skip(reason)


@pytest.mark.parametrize("env_file", [None, ".env.example"])
def test_docker_compose_config_validates(env_file, tmp_path):
    cli = _compose_cli()
    # A project directory without a .env, so only the given env file (or the defaults) is used.
    args = [*cli, "--project-directory", str(REPO), "-f", str(COMPOSE)]
    if env_file:
        args += ["--env-file", str(REPO / env_file)]
    else:
        empty = tmp_path / "empty.env"
        empty.write_text("", encoding="utf-8")
        args += ["--env-file", str(empty)]
    try:
        done = subprocess.run([*args, "config", "--quiet"], capture_output=True, text=True, timeout=60)
    except subprocess.TimeoutExpired:
        pytest.skip("docker compose config timed out")
    output = (done.stderr + done.stdout).strip()
    if done.returncode != 0 and re.search(r"docker daemon|Cannot connect to the Docker", output, re.I):
        pytest.skip(f"docker compose config needs an engine here: {' '.join(output.split())[:300]}")
    assert done.returncode == 0, output
