"""The web UI with login on (ZHIWEN_UI_AUTH=1): the real entry script (app/ui/main.py, its st.navigation
and every page) through streamlit.testing's AppTest, over real knowledge bases and real API keys."""

from __future__ import annotations

import json
import shutil
import subprocess

import pytest
from streamlit.testing.v1 import AppTest
from typer.testing import CliRunner

from core.keys import create_key, revoke_key
from ingest.pipeline import ingest_paths
from tests.conftest import SAMPLES, write
from tests.ui_helpers import login, rendered
from tests.ui_helpers import main_app as app

SECRET_TEXT = "青龙项目的预算是三千万元，仅限董事会成员查阅。\n"


@pytest.fixture
def data_dir(data_dir, monkeypatch):
    monkeypatch.setenv("ZHIWEN_UI_AUTH", "1")
    return data_dir


@pytest.fixture
def kbs(data_dir, tmp_path):
    """"demo" from the sample corpus and "secret", one document that only its members may read."""
    shutil.copytree(SAMPLES, tmp_path / "corpus")
    ingest_paths([tmp_path / "corpus"], "demo", data_dir)
    ingest_paths([write(tmp_path / "secret" / "青龙项目.md", SECRET_TEXT)], "secret", data_dir)
    return data_dir


@pytest.fixture
def tokens(kbs) -> dict[str, str]:
    roles = {"reader": {"demo": "read"}, "writer": {"demo": "write"}, "admin": {"*": "admin"}, "founder": {"新库": "admin"}}
    return {name: create_key(kbs, name, r)[1] for name, r in roles.items()}


def labels(at: AppTest) -> set[str]:
    return {b.label for b in at.button}


def assert_login_form_only(at: AppTest) -> None:
    assert [w.key for w in at.text_input] == ["login-token"] and at.text_input(key="login-token").proto.type == 1  # PASSWORD
    assert labels(at) == {"登录"}
    assert not at.selectbox and not at.chat_input and not at.file_uploader
    text = rendered(at)
    assert "demo" not in text and "secret" not in text and "青龙" not in text


def ask(at: AppTest, question: str) -> str:
    at.chat_input[0].set_value(question).run()
    return " ".join(md.value for m in at.chat_message if m.name == "assistant" for md in m.markdown)


def test_without_a_key_only_the_login_form_shows(tokens):
    at = app()
    assert_login_form_only(at)
    assert "登录" in [s.value for s in at.subheader]
    at.sidebar.radio(key="lang").set_value("en").run()
    assert labels(at) == {"Log in"}, "English is available on the login page"


def test_wrong_and_revoked_keys_get_a_clear_error_and_nothing_else(tokens, kbs):
    at = login("zw-00000000-not-a-real-secret")
    assert "API key 无效或已被吊销" in at.error[0].value
    assert_login_form_only(at)
    revoke_key(kbs, tokens["reader"].split("-")[1])
    at = login(tokens["reader"], at)
    assert "无效" in at.error[0].value
    assert_login_form_only(at)


def test_reader_sees_only_their_kb_asks_it_and_gets_no_write_controls(tokens):
    at = login(tokens["reader"])
    assert not at.error
    assert any("reader" in c.value for c in at.sidebar.caption), "the key's name in the sidebar"
    assert at.sidebar.selectbox(key="kb").options == ["demo"]
    assert "secret" not in rendered(at)
    assert at.sidebar.text_input(key="llm_base_url").disabled, "only an admin may point the server at another LLM"
    text = ask(at, "一线城市住宿标准是多少？")
    assert "600元" in text and "[1]" in text and "差旅报销制度.md" in text

    at.switch_page("views/knowledge_bases.py").run()
    assert at.selectbox(key="kb").options == ["demo"]
    assert len(at.dataframe[0].value) == 8, "a reader sees the documents"
    assert not at.file_uploader and not labels(at) & {"导入", "删除文档", "重新索引", "删除整个知识库", "创建"}
    assert not at.expander and "secret" not in rendered(at)

    at.switch_page("views/moderation.py").run()
    assert not at.text_area and "保存" not in labels(at)


def test_writer_gets_upload_and_document_controls_but_not_kb_admin(tokens):
    at = login(tokens["writer"])
    at.switch_page("views/knowledge_bases.py").run()
    assert at.selectbox(key="kb").options == ["demo"]
    assert len(at.file_uploader) == 1
    assert {"导入", "删除文档", "重新索引"} <= labels(at)
    assert not labels(at) & {"创建", "删除整个知识库"}


def test_admin_on_every_kb_sees_all_and_creates_and_deletes(tokens, kbs):
    at = login(tokens["admin"])
    assert at.sidebar.selectbox(key="kb").options == ["demo", "secret"]
    at.switch_page("views/knowledge_bases.py").run()
    assert {"创建", "导入", "删除文档", "重新索引", "删除整个知识库"} <= labels(at)
    at.text_input(key="new-kb-name").set_value("手册")
    at.button(key="FormSubmitter:create-kb-创建").click().run()
    assert at.success[0].value.startswith("已创建") and at.selectbox(key="kb").value == "手册"
    at.checkbox(key="confirm-delete-手册").check().run()
    next(b for b in at.button if b.label == "删除整个知识库").click().run()
    assert not (kbs.kbs_dir / "手册").exists()
    at.switch_page("views/moderation.py").run()
    assert at.text_area and "保存" in labels(at)


def test_creating_a_kb_needs_admin_on_that_name(tokens, kbs):
    at = login(tokens["founder"])  # admin on "新库" only
    assert "没有你可以访问的知识库" in at.info[0].value and not at.selectbox
    at.switch_page("views/knowledge_bases.py").run()
    at.text_input(key="new-kb-name").set_value("别的库")
    at.button(key="FormSubmitter:create-kb-创建").click().run()
    assert "没有权限" in at.error[0].value and not (kbs.kbs_dir / "别的库").exists()
    at.text_input(key="new-kb-name").set_value("新库")
    at.button(key="FormSubmitter:create-kb-创建").click().run()
    assert at.selectbox(key="kb").options == ["新库"]
    assert "删除整个知识库" in labels(at) and "demo" not in rendered(at)


def test_evaluation_runs_need_read_on_their_kb(tokens, tmp_path):
    for name, kb in (("mine", "demo"), ("theirs", "secret"), ("unnamed", None)):
        (tmp_path / name).mkdir()
        report = {"aggregate": {"hit_at_5": 0.75}, "records": []} | ({"kb": kb} if kb else {})
        (tmp_path / name / "report.json").write_text(json.dumps(report), encoding="utf-8")
    at = login(tokens["reader"])
    at.switch_page("views/evaluation.py").run()
    at.text_input(key="eval-a").set_value(str(tmp_path / "mine")).run()
    assert dict(zip(at.dataframe[0].value["指标"], at.dataframe[0].value["值"]))["命中率@5"] == "0.750"
    for name in ("theirs", "unnamed"):
        at.text_input(key="eval-a").set_value(str(tmp_path / name)).run()
        assert "没有权限" in at.error[0].value and not at.dataframe
    admin = login(tokens["admin"])
    admin.switch_page("views/evaluation.py").run()
    admin.text_input(key="eval-a").set_value(str(tmp_path / "unnamed")).run()
    assert not admin.error and admin.dataframe


def test_a_key_revoked_after_login_is_logged_out_on_the_next_rerun(tokens, kbs):
    at = login(tokens["reader"])
    assert "600元" in ask(at, "一线城市住宿标准是多少？")
    revoke_key(kbs, tokens["reader"].split("-")[1])
    at.run()
    assert "已失效" in at.warning[0].value
    assert_login_form_only(at)
    assert "messages" not in at.session_state, "the conversation went with the session"


def test_logout_forgets_the_key_and_the_conversation(tokens):
    at = login(tokens["reader"])
    ask(at, "一线城市住宿标准是多少？")
    at.sidebar.button(key="logout").click().run()
    assert_login_form_only(at)
    assert not at.warning and not at.error
    at = login(tokens["reader"], at)
    assert at.sidebar.selectbox(key="kb").options == ["demo"] and not at.chat_message


def test_auth_off_needs_no_login(kbs, monkeypatch):
    monkeypatch.setenv("ZHIWEN_UI_AUTH", "0")
    at = app()
    assert "logout" not in [b.key for b in at.sidebar.button]
    assert at.sidebar.selectbox(key="kb").options == ["demo", "secret"]
    assert not at.sidebar.text_input(key="llm_base_url").disabled


@pytest.fixture
def streamlit_call(monkeypatch):
    """`zhiwen ui` in-process with the streamlit subprocess replaced: its argv and environment are recorded."""
    calls = []
    monkeypatch.setattr(subprocess, "call", lambda argv, env=None: calls.append((argv, env)) or 0)
    return calls


def test_cli_ui_has_auth_option(settings):
    from app.cli import app as cli

    result = CliRunner().invoke(cli, ["ui", "--help"])
    assert result.exit_code == 0 and "--auth" in result.output and "--no-auth" in result.output


@pytest.mark.parametrize(("args", "flag", "word"), [
    ([], "0", "关"), (["--host", "0.0.0.0"], "1", "开"), (["--host", "0.0.0.0", "--no-auth"], "0", "关"), (["--auth"], "1", "开"),
])
def test_cli_ui_passes_auth_to_streamlit(args, flag, word, streamlit_call, settings, monkeypatch):
    from app.cli import app as cli

    monkeypatch.setenv("ZHIWEN_DATA_DIR", str(settings.data_dir))  # no ZHIWEN_UI_AUTH: the host decides

    result = CliRunner().invoke(cli, ["ui", *args])
    assert result.exit_code == 0, result.output
    argv, env = streamlit_call[-1]
    assert argv[1:4] == ["-m", "streamlit", "run"] and env["ZHIWEN_UI_AUTH"] == flag
    assert f"认证 (auth): {word}" in result.output
    assert ("zhiwen keys create" in result.output) == (flag == "1"), "with auth on and no key yet, says how to make one"


def test_cli_ui_keeps_auth_on_when_the_environment_asks_for_it(streamlit_call, data_dir):
    from app.cli import app as cli

    create_key(data_dir, "admin", {"*": "admin"})
    result = CliRunner().invoke(cli, ["ui"])  # 127.0.0.1, but ZHIWEN_UI_AUTH=1 (the data_dir fixture): e.g. behind a proxy
    assert streamlit_call[-1][1]["ZHIWEN_UI_AUTH"] == "1" and "认证 (auth): 开" in result.output
    assert "zhiwen keys create" not in result.output, "a usable key exists"
