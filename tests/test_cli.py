"""The `zhiwen` console script as a user runs it: a real subprocess, real files, real exit codes."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import SAMPLES

ZHIWEN = shutil.which("zhiwen", path=str(Path(sys.executable).parent)) or "zhiwen"


def run(args, data_dir, extra_env=None, **kw):
    env = {**os.environ, "ZHIWEN_DATA_DIR": str(data_dir), "ZHIWEN_CONFIG": str(data_dir / "none.toml"), **(extra_env or {})}
    return subprocess.run([ZHIWEN, *args], capture_output=True, text=True, env=env, timeout=300, **kw)


@pytest.fixture(scope="module")
def kb_dir(tmp_path_factory):
    data = tmp_path_factory.mktemp("cli")
    bad = data / "incoming"
    shutil.copytree(SAMPLES, bad)
    (bad / "坏.pdf").write_bytes(b"%PDF-1.4\n" + os.urandom(2000))
    result = run(["ingest", str(bad), "--kb", "demo"], data)
    return data, result


def test_ingest_reports_each_file_and_exits_nonzero_when_one_failed(kb_dir):
    _, result = kb_dir
    assert result.returncode == 1
    assert "坏.pdf" in result.stdout and "失败" in result.stdout
    assert "差旅报销制度.md" in result.stdout and "已索引" in result.stdout
    assert "新增 8" in result.stdout


def test_reingest_unchanged_exits_zero_and_skips(kb_dir, tmp_path):
    data, _ = kb_dir
    result = run(["ingest", str(SAMPLES / "差旅报销制度.md"), "--kb", "demo2", "--json"], data)
    assert result.returncode == 0, result.stderr
    again = run(["ingest", str(SAMPLES / "差旅报销制度.md"), "--kb", "demo2", "--json"], data)
    assert [r["status"] for r in json.loads(again.stdout)["results"]] == ["unchanged"]


def test_ask_json_shape(kb_dir):
    data, _ = kb_dir
    result = run(["ask", "一线城市住宿标准是多少？", "--kb", "demo", "--json"], data)
    assert result.returncode == 0, result.stderr
    out = json.loads(result.stdout)
    assert set(out) >= {"answer", "refused", "citations", "timings_ms"}
    assert out["refused"] is False and "600元" in out["answer"]
    c = out["citations"][0]
    assert set(c) == {"n", "source", "page", "start", "end", "quote", "chunk_id", "score", "masked"} and c["masked"] is False
    assert c["n"] == 1 and c["source"].endswith("差旅报销制度.md") and c["quote"] in out["answer"] or c["quote"]
    assert [x["n"] for x in out["citations"]] == list(range(1, len(out["citations"]) + 1))


def test_ask_json_refuses_when_nothing_is_relevant(kb_dir):
    data, _ = kb_dir
    out = json.loads(run(["ask", "火星上有多少颗卫星？", "--kb", "demo", "--json"], data).stdout)
    assert out["refused"] is True and out["citations"] == []


def test_kb_list_show_and_rm(kb_dir):
    data, _ = kb_dir
    listed = json.loads(run(["kb", "list", "--json"], data).stdout)
    demo = next(k for k in listed if k["name"] == "demo")
    assert demo["n_documents"] == 8 and demo["n_chunks"] > 8
    shown = run(["kb", "show", "demo"], data)
    assert shown.returncode == 0 and "员工手册" in shown.stdout

    source = next(d["source"] for d in json.loads(run(["kb", "show", "demo", "--json"], data).stdout)["documents"] if d["source"].endswith(".csv"))
    assert run(["kb", "rm", "demo", "--doc", source, "--yes"], data).returncode == 0
    assert run(["kb", "rm", "demo", "--doc", source, "--yes"], data).returncode == 1
    listed = json.loads(run(["kb", "list", "--json"], data).stdout)
    assert next(k for k in listed if k["name"] == "demo")["n_documents"] == 7


def test_unknown_kb_gives_a_clear_error(kb_dir):
    data, _ = kb_dir
    result = run(["ask", "问题", "--kb", "nope"], data)
    assert result.returncode == 1
    assert "不存在" in result.stderr and "zhiwen ingest" in result.stderr


def test_rm_whole_kb(kb_dir):
    data, _ = kb_dir
    run(["ingest", str(SAMPLES / "常见问题.csv"), "--kb", "temp"], data)
    assert run(["kb", "rm", "temp", "--yes"], data).returncode == 0
    assert all(k["name"] != "temp" for k in json.loads(run(["kb", "list", "--json"], data).stdout))


def test_chat_follows_the_conversation_and_starts_over(kb_dir):
    data, _ = kb_dir
    script = "知问网关的性能怎么样？\n它的延迟是多少?\n/new\n/exit\n"
    result = run(["chat", "--kb", "demo"], data, input=script)
    assert result.returncode == 0, result.stderr
    assert result.stdout.count("知问网关产品说明.html") >= 2, "both turns cite the gateway document"
    assert "已开始新对话" in result.stdout


def test_chat_answers_a_new_topic_on_its_own(kb_dir):
    """Issue 20: a new topic inside a conversation is not answered with the previous topic's answer."""
    data, _ = kb_dir
    script = "客户投诉多久内要给出处理方案？\n资安事件多久内要通报？\n/exit\n"
    result = run(["chat", "--kb", "demo"], data, input=script)
    assert result.returncode == 0, result.stderr
    first, second = result.stdout.split("问> ")[1:3]
    assert "客户服务规范.pdf" in first and "48小时" in first
    assert "資訊安全規範.txt" in second and "1小时内通报" in second, second
    assert "客户服务规范.pdf" not in second, second


def test_ask_stream_shows_the_extractive_answer_once_after_an_llm_dies_mid_answer(kb_dir):
    from tests.scripted_llm import ScriptedLLM

    data, _ = kb_dir
    llm = ScriptedLLM("根据差旅报销制度，一线城市的住宿标准是每晚", die_after=8)
    try:
        result = run(["ask", "一线城市住宿标准是多少？", "--kb", "demo", "--stream"], data,
                     extra_env={"ZHIWEN_LLM_BASE_URL": llm.base_url, "ZHIWEN_LLM_MAX_RETRIES": "0"})
    finally:
        llm.close()
    assert result.returncode == 0, result.stderr
    partial, sep, rest = result.stdout.partition("——（大模型中断，以下为从资料中摘录的答案）——")
    assert sep and partial.strip() == llm.reply[:8], result.stdout
    answer, _, sources = rest.partition("\n[1] ")
    assert answer.count("600元") == 1, "the fallback answer is streamed, and not printed a second time"
    assert "差旅报销制度.md" in sources and "抽取式" in sources
    assert "已改用抽取式回答" in result.stderr


def test_moderation_check_explains_itself(kb_dir):
    data, _ = kb_dir
    result = run(["moderation", "check", "这款产品保 本，手机13800138000", "--surface", "answer"], data)
    assert result.returncode == 0, result.stderr
    assert "打码" in result.stdout and "compliance" in result.stdout and "pii:mobile" in result.stdout
    assert "13800138000" not in result.stdout
    blocked = json.loads(run(["moderation", "check", "如何自制炸药", "--surface", "question", "--json"], data).stdout)
    assert blocked["blocked"] and blocked["findings"][0]["category"] == "violence"
