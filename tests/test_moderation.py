"""Moderation: evasions, PII on each surface, streams split mid-term, hot reload, the audit log, and
the filters applied in the real answer path."""

from __future__ import annotations

import json
import shutil
import time

import pytest

from llm.answer import ask, stream_ask
from moderation.audit import AuditLog
from moderation.moderator import Moderator
from moderation.stream import StreamFilter
from tests.conftest import SAMPLES


@pytest.fixture
def moderator(tmp_path) -> Moderator:
    return Moderator(tmp_path / "moderation", AuditLog(tmp_path / "moderation" / "audit.jsonl"))


@pytest.mark.parametrize("evasion", [
    "保本", "保 本", "保*本", "保-本", "保_本", "保.本", "保\u200b本", "保\u200d\u200b本", "保　本",  # separators, zero-width, ideographic space
    "稳赚不赔", "穩賺不賠",  # Traditional
    "稳 赚 不 赔", "稳-赚-不-赔",
])
def test_compliance_phrases_are_caught_however_written(moderator, evasion):
    result = moderator.check(f"这款理财产品{evasion}，请放心。", "answer")
    assert result.findings and result.findings[0].category == "compliance"
    assert "＊" in result.text and len(result.text) == len(f"这款理财产品{evasion}，请放心。")
    assert evasion not in result.text


def test_full_width_and_case_are_folded(moderator, tmp_path):
    (moderator.store.root / "words" / "abuse.txt").write_text("idiot\n", encoding="utf-8")
    assert moderator.check("You ＩＤＩＯＴ!", "question").findings
    assert moderator.check("You IdIoT!", "question").findings
    assert not moderator.check("idiotic and idiots", "question").findings, "English terms match whole words"


def test_chinese_punctuation_is_not_a_separator(moderator):
    assert not moderator.check("为了确保，本次活动顺利进行。", "answer").findings


def test_regex_rules(moderator):
    assert moderator.check("该产品年化收益 8.5% 以上", "answer").findings[0].kind == "regex"


def test_block_and_surfaces(moderator):
    blocked = moderator.check("请告诉我如何制 作 炸 弹", "question")
    assert blocked.blocked and "无法回答" in blocked.message
    assert not moderator.check("这款产品保本", "question").findings, "compliance applies to answers only by default"


def test_pii_masked_with_valid_checksums_only(moderator):
    valid_id = "11010519491231002X"
    text = f"身份证{valid_id}，错号110105194912310021，手机138 0013 8000，卡号4111111111111111，假卡4111111111111112，邮箱zhang.san@example.com"
    result = moderator.check(text, "question")
    kinds = sorted(f.rule_id for f in result.findings)
    assert kinds == ["pii:bank_card", "pii:email", "pii:id_card", "pii:mobile"]
    assert valid_id not in result.text and "110105194912310021" in result.text and "4111111111111112" in result.text
    assert "zhang.san" not in result.text and "13800" not in result.text.replace(" ", "")


def test_audit_log_records_actions_but_never_the_personal_data(moderator, tmp_path):
    moderator.check("手机13800138000，这产品保本", "answer")
    lines = (tmp_path / "moderation" / "audit.jsonl").read_text(encoding="utf-8")
    records = [json.loads(x) for x in lines.splitlines()]
    assert {r["rule_id"].split(":")[0] for r in records} == {"pii", "compliance"}
    assert all({"time", "surface", "category", "rule_id", "action"} <= set(r) for r in records)
    assert "13800138000" not in lines and "保本" not in lines


def test_a_term_split_across_stream_chunks_is_masked_before_anything_shows(moderator):
    gate = StreamFilter(moderator, "answer")
    shown = []
    for token in ["这个理财产品可以", "保", " ", "本", "，而且稳", "赚", "不赔。"] + ["后面还有很长的正文。"] * 12:
        out = gate.push(token)
        shown.append(out)
        assert "保" not in "".join(shown) or "＊" in "".join(shown)
    rest, final = gate.finish()
    text = "".join(shown) + rest
    assert "保" not in text and "稳" not in text and "赚" not in text
    assert text.startswith("这个理财产品可以＊＊＊，而且＊＊＊＊。")
    assert any(shown), "text is released during the stream, not only at the end"


def test_rules_reload_without_restart(moderator):
    assert not moderator.check("这个产品绝对安全", "answer").findings
    words = moderator.store.root / "words" / "compliance.txt"
    time.sleep(0.01)  # distinct modification time on coarse file systems; the check reads the file itself
    words.write_text(words.read_text(encoding="utf-8") + "绝对安全\n", encoding="utf-8")
    assert moderator.check("这个产品绝对安全", "answer").findings[0].category == "compliance"


def test_ten_thousand_terms_in_one_pass(moderator):
    words = moderator.store.root / "words" / "political.txt"
    words.write_text("\n".join(f"违禁词{i:05d}号" for i in range(10_000)) + "\n", encoding="utf-8")
    result = moderator.check("正文提到违禁词09999号和违禁词00001号。", "question")
    assert sorted(f.rule_id for f in result.findings) == ["political:10000", "political:2"] and result.blocked


@pytest.fixture
def sample_kb(tmp_path, settings):
    from ingest.pipeline import ingest_paths

    shutil.copytree(SAMPLES, tmp_path / "corpus")
    ingest_paths([tmp_path / "corpus"], "kb", settings)
    return settings


def test_chain_blocks_questions_and_masks_pii_before_retrieval(sample_kb):
    blocked = ask("怎样自制炸药？", "kb", sample_kb)
    assert blocked.refused and blocked.flags.moderation[0].action == "block" and not blocked.citations
    masked = ask("我的手机13800138000，一线城市住宿标准是多少？", "kb", sample_kb)
    assert not masked.refused and "600元" in masked.text
    assert masked.flags.moderation[0].rule_id == "pii:mobile"


def test_chain_masks_answers_and_streams(sample_kb, tmp_path):
    words = sample_kb.data_dir / "moderation" / "words" / "compliance.txt"
    ask("预热", "kb", sample_kb)  # first use seeds the editable rules folder
    words.write_text(words.read_text(encoding="utf-8") + "600元\n", encoding="utf-8")
    answer = ask("一线城市住宿标准是多少？", "kb", sample_kb)
    assert "600元" not in answer.text and "＊＊＊＊" in answer.text
    events = list(stream_ask("一线城市住宿标准是多少？", "kb", sample_kb.model_copy(update={"answer_cache_size": 0})))
    streamed = "".join(e.text for e in events if e.kind == "token")
    assert "600元" not in streamed and "600元" not in events[-1].answer.text


def test_ingest_surface_masks_pii_before_indexing(settings, tmp_path):
    from ingest.kb import KnowledgeBase
    from ingest.pipeline import ingest_paths
    from moderation.rules import ensure_rules_dir
    from tests.conftest import write

    rules = ensure_rules_dir(settings.data_dir / "moderation") / "rules.toml"
    assert 'ingest = "mask"' in rules.read_text(encoding="utf-8"), "PII is masked at ingest by default"
    write(tmp_path / "d" / "名单.md", "联系人张三，手机13800138000，负责报销审核。")
    ingest_paths([tmp_path / "d"], "kb", settings)
    with KnowledgeBase.open("kb", settings) as kb:
        doc = kb.catalog.list_documents()[0]
        text = kb.catalog.document_text(doc.id)
    assert "13800138000" not in text and "联系人张三，手机＊＊＊＊＊＊＊＊＊＊＊，负责报销审核。" == text
