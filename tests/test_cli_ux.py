"""`zhiwen` as a user meets it in a terminal, a script and a log: deletions that ask first (and refuse to
guess without a terminal), "did you mean …?" for a mistyped knowledge base, progress lines in a log,
unsupported files named, `kb show` readable, help text whole, `llm serve` quiet.

Real subprocesses where the terminal matters (a pseudo-terminal from the pty module stands in for a user's
terminal), typer's CliRunner in-process where it doesn't."""

from __future__ import annotations

import inspect
import os
import pty
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import typer.main
from typer.testing import CliRunner

from app.cli import app
from core.settings import load_settings
from ingest.kb import KnowledgeBase

ZHIWEN = shutil.which("zhiwen", path=str(Path(sys.executable).parent)) or "zhiwen"
N_NOTICES = 21  # more than one progress line's worth (a line per 10 files)


def env_for(data: Path) -> dict[str, str]:
    return {**os.environ, "ZHIWEN_DATA_DIR": str(data), "ZHIWEN_CONFIG": str(data / "none.toml")}


def run(args, data: Path, **kw) -> subprocess.CompletedProcess:
    """Not a terminal: stdin from /dev/null, stdout and stderr captured (a script, CI, a log)."""
    kw.setdefault("stdin", subprocess.DEVNULL)
    return subprocess.run([ZHIWEN, *args], capture_output=True, text=True, env=env_for(data), timeout=300, check=False, **kw)


def run_in_terminal(args, data: Path, answer: str) -> subprocess.CompletedProcess:
    """stdin is a pseudo-terminal with the user's answer already typed into it."""
    master, slave = pty.openpty()
    try:
        os.write(master, answer.encode())
        return run(args, data, stdin=slave)
    finally:
        os.close(slave)
        os.close(master)


@pytest.fixture(scope="module")
def folder_kb(tmp_path_factory):
    """A folder of 21 notices, two files no loader reads and a hidden one, ingested without a terminal."""
    data = tmp_path_factory.mktemp("cli-ux")
    folder = data / "incoming"
    (folder / "通知").mkdir(parents=True)
    for i in range(1, N_NOTICES + 1):
        (folder / "通知" / f"通知{i:02d}.txt").write_text(f"第 {i} 号通知：本周五下午三点在三楼会议室开会，议题是第 {i} 项。\n", encoding="utf-8")
    (folder / "照片.gif").write_bytes(b"GIF89a")  # (PNG/JPEG are read by OCR now; GIF is not)
    (folder / "tool.exe").write_bytes(b"MZ")
    (folder / ".secret.exe").write_bytes(b"MZ")
    result = run(["ingest", str(folder), "--kb", "notices"], data)
    return data, folder, result


def test_ingest_without_a_terminal_prints_progress_lines_and_names_unsupported_files(folder_kb):
    _, _, result = folder_kb
    assert result.returncode == 0, result.stderr
    progress = re.findall(r"已处理 (\d+)/(\d+) 个文件", result.stderr)
    assert progress == [("10", "21"), ("20", "21"), ("21", "21")], result.stderr
    assert "\x1b[" not in result.stderr and "━" not in result.stderr, "no live bar or colour codes in a log"
    unsupported = [line for line in result.stdout.splitlines() if line.startswith("不支持")]
    assert len(unsupported) == 2 and any("照片.gif" in u for u in unsupported) and any("tool.exe" in u for u in unsupported)
    assert ".secret.exe" not in result.stdout, "hidden files are not reported"
    assert "不支持 2" in result.stdout and ".pdf" in result.stdout, "the summary counts them and lists what is supported"


def test_kb_show_names_whole_sources_and_readable_types(folder_kb):
    data, folder, _ = folder_kb
    shown = run(["kb", "show", "notices"], data)
    assert shown.returncode == 0, shown.stderr
    for i in range(1, N_NOTICES + 1):
        assert str(folder / "通知" / f"通知{i:02d}.txt") in shown.stdout, "the whole path, as `kb rm --doc` takes it"
    assert "…" not in shown.stdout
    assert "文本" in shown.stdout and "plain" not in shown.stdout


def test_kb_rm_asks_in_a_terminal_and_refuses_to_guess_without_one(folder_kb):
    data, folder, _ = folder_kb
    source = str(folder / "通知" / "通知01.txt")
    refused = run(["kb", "rm", "notices", "--doc", source], data)
    assert refused.returncode != 0 and "--yes" in refused.stderr and "不是终端" in refused.stderr
    declined = run_in_terminal(["kb", "rm", "notices", "--doc", source], data, "n\n")
    assert declined.returncode == 1 and "[y/N]" in declined.stdout and "已取消" in declined.stderr
    with KnowledgeBase.open("notices", load_settings(data_dir=data)) as kb:
        assert source in {d.source for d in kb.catalog.list_documents()}, "nothing deleted without a yes"

    accepted = run_in_terminal(["kb", "rm", "notices", "--doc", source], data, "y\n")
    assert accepted.returncode == 0, accepted.stderr
    assert run(["kb", "rm", "notices", "--doc", str(folder / "通知" / "通知02.txt"), "--yes"], data).returncode == 0
    with KnowledgeBase.open("notices", load_settings(data_dir=data)) as kb:
        assert kb.info().n_documents == N_NOTICES - 2

    KnowledgeBase.open("scratch", load_settings(data_dir=data), create=True).close()
    assert run(["kb", "rm", "scratch"], data).returncode != 0
    assert run_in_terminal(["kb", "rm", "scratch"], data, "\n").returncode == 1, "the default answer is no"
    assert (data / "kbs" / "scratch").is_dir()
    assert run_in_terminal(["kb", "rm", "scratch"], data, "y\n").returncode == 0
    assert not (data / "kbs" / "scratch").exists()


# ---- in-process ------------------------------------------------------------------------------------------

@pytest.fixture
def two_kbs(monkeypatch, settings):
    monkeypatch.setenv("ZHIWEN_DATA_DIR", str(settings.data_dir))
    for name in ("policies", "产品手册"):
        KnowledgeBase.open(name, settings, create=True).close()
    return settings


@pytest.mark.parametrize("args", [
    ["ask", "住宿标准？", "--kb", "{typo}"],
    ["chat", "--kb", "{typo}"],
    ["kb", "show", "{typo}"],
    ["kb", "rm", "{typo}", "--yes"],
    ["kb", "migrate", "{typo}", "--to", "milvus"],
    ["kb", "reembed", "{typo}", "--model", "usem3"],
    ["eval", "run", "{dataset}", "--kb", "{typo}", "--out", "{out}"],
    ["finetune", "prepare", "--out", "{out}", "--from-kb", "{typo}"],
])
@pytest.mark.parametrize(("typo", "meant"), [("policy", "policies"), ("Policies", "policies"), ("产品手删", "产品手册")])
def test_a_mistyped_knowledge_base_gets_did_you_mean(two_kbs, tmp_path, args, typo, meant):
    dataset = tmp_path / "qa.jsonl"
    dataset.write_text('{"id": "q", "question": "住宿标准？"}\n', encoding="utf-8")
    argv = [a.format(typo=typo, dataset=dataset, out=tmp_path / "out") for a in args]
    result = CliRunner().invoke(app, argv, input="")
    assert result.exit_code == 1, result.output
    assert "不存在" in result.stderr and f"你是不是要找 “{meant}”" in result.stderr and f"did you mean '{meant}'" in result.stderr
    assert not (tmp_path / "out").exists(), "nothing written for a knowledge base that is not there"
    assert sorted(p.name for p in two_kbs.kbs_dir.iterdir()) == sorted(["policies", "产品手册"])


def test_no_suggestion_when_nothing_is_close(two_kbs):
    result = CliRunner().invoke(app, ["kb", "show", "完全不同的名字"])
    assert result.exit_code == 1 and "不存在" in result.stderr and "你是不是" not in result.stderr


def test_ingest_into_a_new_name_close_to_an_existing_one_warns(two_kbs, tmp_path):
    (tmp_path / "a.txt").write_text("出差住宿每晚不超过六百元。", encoding="utf-8")
    result = CliRunner().invoke(app, ["ingest", str(tmp_path / "a.txt"), "--kb", "policy"])
    assert result.exit_code == 0, result.output
    assert "将新建" in result.stderr and "“policies”" in result.stderr


def _commands(command, path=()):
    yield path, command
    for name, sub in getattr(command, "commands", {}).items():
        yield from _commands(sub, (*path, name))


def _flat(text: str) -> str:
    return re.sub(r"[\s│]", "", text)


def test_help_is_never_cut_short_at_80_columns():
    """Every command's summary whole in its group's help, and no help text ending in "…" (Chinese has no
    spaces to wrap at: typer's panels used to cut such lines, `zhiwen eval --help` among them). Left aside:
    a long option name squeezed by its column (`finetune train --gradient-checkpointing`)."""
    runner = CliRunner()
    for path, command in _commands(typer.main.get_command(app)):
        out = runner.invoke(app, [*path, "--help"], env={"COLUMNS": "80"}, terminal_width=80).output
        for name, sub in getattr(command, "commands", {}).items():
            summary = inspect.cleandoc(sub.help or "").split("\n\n")[0]
            assert _flat(summary) in _flat(out), f"`zhiwen {' '.join(path)} --help` cuts the summary of {name}:\n{out}"
        cut = [line for line in out.splitlines() if "…" in re.sub(r"--[\w-]+…", "", line)]
        assert not cut, f"`zhiwen {' '.join(path)} --help` cuts:\n" + "\n".join(cut)


def test_llm_serve_is_quiet_unless_verbose(tmp_path):
    from tests.llm_server import free_port, require_cpu_backend

    require_cpu_backend()
    port = free_port()
    log = tmp_path / "data" / "logs" / f"llm-serve-{port}.log"
    process = subprocess.Popen([ZHIWEN, "llm", "serve", "--backend", "llama-cpp", "--port", str(port)],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env_for(tmp_path / "data"),
                               start_new_session=True)
    try:
        ready = ""
        for line in process.stderr:  # our own lines only: blocks until the server said it is ready (or exited)
            ready += line
            if "就绪" in line:
                break
        assert "就绪" in ready, ready
    finally:
        os.killpg(process.pid, 9)
        process.wait(timeout=30)
    assert str(log) in ready and "llama_model_loader" not in ready and "Uvicorn" not in ready
    assert log.stat().st_size > 0, "the backend's own output went to the log file"
    dry = CliRunner().invoke(app, ["llm", "serve", "--backend", "llama-cpp", "--dry-run"])
    assert "llama_cpp.server" in dry.stderr, "--dry-run still shows the command it would run"
