"""Moderation against evasions (issue 17): invisible characters, emoji and markup slipped between the
characters of a term, pinyin and homophones, separators inside regex matches and personal data, and the
false positives that word boundaries prevent ("确保本次" is not 保本). Each on ``Moderator.check``; the
main ones also through the answer path (``llm.answer.ask`` / ``stream_ask``) and the stream filter."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings as hypothesis_settings
from hypothesis import strategies as st
from langchain_core.language_models.fake_chat_models import GenericFakeChatModel

from core.services import Services
from llm.answer import ask, stream_ask
from moderation.audit import AuditLog
from moderation.moderator import Moderator
from moderation.rules import RuleError
from moderation.stream import StreamFilter
from tests.conftest import write

MASK = "＊"


@pytest.fixture
def moderator(tmp_path) -> Moderator:
    return Moderator(tmp_path / "moderation", AuditLog(tmp_path / "moderation" / "audit.jsonl"))


@pytest.fixture(scope="module")
def shared_moderator(tmp_path_factory) -> Moderator:
    """One moderator for the property test (hypothesis runs the body many times; rules load once)."""
    return Moderator(tmp_path_factory.mktemp("evasion") / "moderation")


def masked(text: str, start: int, end: int) -> str:
    return text[:start] + MASK * (end - start) + text[end:]


def set_category_option(moderator: Moderator, category: str, line: str) -> None:
    rules = moderator.store.root / "rules.toml"
    header = f"[categories.{category}]\n"
    rules.write_text(rules.read_text(encoding="utf-8").replace(header, header + line + "\n"), encoding="utf-8")


# --- invisible characters ------------------------------------------------------------------------

INVISIBLE = {
    "LRM": "\u200e",
    "RLO": "\u202e",
    "invisible times": "\u2062",
    "combining grapheme joiner": "\u034f",
    "variation selector 16": "\ufe0f",
    "Hangul filler": "\u3164",
    "Hangul choseong filler": "\u115f",
    "Hangul jungseong filler": "\u1160",
    "half-width Hangul filler": "\uffa0",
    "isolate": "\u2066",
    "tag letter": "\U000e0041",
    "Mongolian variation selector": "\u180b",
    "word joiner + LRM": "\u2060\u200e",
}


@pytest.mark.parametrize("char", INVISIBLE.values(), ids=INVISIBLE.keys())
def test_invisible_characters_are_ignored(moderator, char):
    text = f"这款理财产品保{char}本，请放心。"
    result = moderator.check(text, "answer")
    assert [f.category for f in result.findings] == ["compliance"]
    assert result.text == masked(text, 6, 8 + len(char)), "the mask covers the term and what was slipped into it"


def test_an_invisible_character_inside_an_english_word_is_no_word_boundary(moderator):
    (moderator.store.root / "words" / "abuse.txt").write_text("idiot\n", encoding="utf-8")
    assert moderator.check("you id\u200eiot", "question").text == "you " + MASK * 6
    assert moderator.check("you id\u2062iot", "question").findings


# --- emoji, symbols, markup, brackets between characters ----------------------------------------


@pytest.mark.parametrize(
    ("text", "span"),
    [
        ("这款产品保💰本。", (4, 7)),
        ("这款产品稳😀赚😀不😀赔。", (4, 11)),
        ("这款产品保<b></b>本。", (4, 13)),
        ("这款产品保「本」。", (4, 7)),
        ("这款产品保&nbsp;本。", (4, 12)),
        ("这款产品保<span style='color:red'>本</span>。", (4, 30)),
        ("这款产品稳👍🏻赚不赔。", (4, 10)),  # emoji with a skin-tone modifier (Sk)
        ("这款产品穩💰賺不賠。", (4, 9)),  # and Traditional
        ("这款产品保★本。", (4, 7)),
        ("这款产品保『本』。", (4, 7)),
    ],
)
def test_emoji_and_markup_between_characters(moderator, text, span):
    result = moderator.check(text, "answer")
    assert result.findings and {f.category for f in result.findings} == {"compliance"}
    first = min(f.start for f in result.findings)
    last = max(f.end for f in result.findings)
    assert (first, last) == span, "findings carry offsets into the original text"
    assert result.text == masked(text, *span)


def test_emoji_between_characters_of_a_blocked_question(moderator):
    result = moderator.check("请问怎样自💣制炸药？", "question")
    assert result.blocked and result.findings[0].category == "violence"


# --- pinyin and homophones -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "span"),
    [
        ("这款产品baoben，请放心。", (4, 10)),
        ("这款产品 bao ben，请放心。", (5, 12)),
        ("这款产品 BaoBen，请放心。", (5, 11)),
        ("这款产品bao-ben，请放心。", (4, 11)),
        ("这款产品饱本，请放心。", (4, 6)),
        ("这款产品保ben，请放心。", (4, 8)),
        ("这款产品 wen zhuan bu pei。", (5, 21)),
        ("这款产品稳赚不陪。", (4, 8)),
    ],
)
def test_terms_written_by_sound(moderator, text, span):
    result = moderator.check(text, "answer")
    assert result.findings and {f.category for f in result.findings} == {"compliance"}
    assert (min(f.start for f in result.findings), max(f.end for f in result.findings)) == span
    assert result.text == masked(text, *span)


def test_pinyin_matches_whole_words_and_whole_syllables_only(moderator):
    assert moderator.check("baoben", "answer").findings
    for text in ["abaobenx", "xbao ben", "bao benz", "xiao ben", "tabaoben"]:
        assert not moderator.check(text, "answer").findings, text


def test_pinyin_and_homophones_on_questions(moderator):
    assert moderator.check("zizhi zhayao peifang", "question").blocked
    assert moderator.check("你这个baichi", "question").text == "你这个" + MASK * 6


def test_homophones_that_are_ordinary_words_do_not_match(moderator):
    assert moderator.check("饱本", "answer").findings, "an evasion: no word of its own"
    assert not moderator.check("今天白吃白喝了一顿", "question").findings, "白吃 is a word, not 白痴"
    assert not moderator.check("我吃饱本来就想睡", "answer").findings, "吃饱 and 本来 are words"
    assert not moderator.check("宝笨", "answer").findings, "both characters swapped: chance, not 保本"
    assert not moderator.check("这是他的家", "question").findings


def test_pinyin_and_homophones_switch_per_category(moderator):
    assert moderator.check("baoben 饱本", "answer").findings
    set_category_option(moderator, "compliance", "homophones = false")
    assert [(f.start, f.end) for f in moderator.check("baoben 饱本", "answer").findings] == [(0, 6)]
    set_category_option(moderator, "compliance", "pinyin = false")
    assert not moderator.check("baoben 饱本", "answer").findings
    assert moderator.check("保本", "answer").findings


def test_flag_categories_do_not_match_by_sound_unless_they_opt_in(moderator):
    rules = moderator.store.root / "rules.toml"
    rules.write_text(rules.read_text(encoding="utf-8").replace('action = "mask"\nsurfaces = ["answer"]', 'action = "flag"\nsurfaces = ["answer"]', 1), encoding="utf-8")
    assert moderator.check("保本", "answer").findings and not moderator.check("baoben", "answer").findings
    set_category_option(moderator, "compliance", "pinyin = true")
    assert moderator.check("baoben", "answer").findings[0].action == "flag"


def test_switches_must_be_booleans(moderator):
    set_category_option(moderator, "compliance", 'pinyin = "yes"')
    with pytest.raises(RuleError, match="pinyin"):
        moderator.check("保本", "answer")


# --- regex rules and PII across separators -------------------------------------------------------


@pytest.mark.parametrize("text", ["该产品年化\u200b收益8%以上", "该产品年化收益\u200e 8.5%\u2060 以上", "该产品年化💰收益8%以上", "该产品年化-收益 8% 以上"])
def test_regex_rules_see_through_invisible_characters_and_separators(moderator, text):
    result = moderator.check(text, "answer")
    assert [f.kind for f in result.findings] == ["regex"]
    assert result.text == "该产品" + MASK * (len(text) - 3)


@pytest.mark.parametrize(
    ("text", "kind", "pii"),
    [
        ("请拨打138\u200b12345678联系", "mobile", "138\u200b12345678"),
        ("请拨打138\u200b1234\u200b5678联系", "mobile", "138\u200b1234\u200b5678"),
        ("请拨打138😀1234😀5678联系", "mobile", "138😀1234😀5678"),
        ("邮箱 security [at] example.com 联系", "email", "security [at] example.com"),
        ("邮箱 security(at)example dot com 联系", "email", "security(at)example dot com"),
        ("邮箱 security at example dot com 联系", "email", "security at example dot com"),
        ("邮箱 zhang.san【at】example【dot】cn 联系", "email", "zhang.san【at】example【dot】cn"),
        ("身份证 110105 19491231 002X 联系", "id_card", "110105 19491231 002X"),
        ("身份证 110105-1949-1231-002X 联系", "id_card", "110105-1949-1231-002X"),
        ("身份证 11010519491231\u200b002X 联系", "id_card", "11010519491231\u200b002X"),
    ],
)
def test_pii_split_by_separators_is_masked_in_the_original(moderator, text, kind, pii):
    result = moderator.check(text, "question")
    assert [f.rule_id for f in result.findings] == [f"pii:{kind}"]
    start = text.index(pii)
    assert (result.findings[0].start, result.findings[0].end) == (start, start + len(pii))
    assert result.text == masked(text, start, start + len(pii))


def test_grouped_numbers_still_masked_and_other_numbers_left_alone(moderator):
    text = "手机138 1234 5678、138-1234-5678、138\u200b12345678；订单号 2023 1104 5566 7788 99，单号 18812345678901234"
    result = moderator.check(text, "question")
    assert [f.rule_id for f in result.findings] == ["pii:mobile"] * 3
    assert "订单号 2023 1104 5566 7788 99，单号 18812345678901234" in result.text
    assert not moderator.check("look at example.com 或 110105 19491231 0021", "question").findings, \
        "plain English 'at' and an ID with a wrong check digit are no PII"


# --- false positives: word boundaries ------------------------------------------------------------


def test_terms_straddling_two_words_do_not_match(moderator):
    for text in ["确保本次活动顺利", "担保本来就难", "为确保本金安全", "环保本身很重要"]:
        assert moderator.check(text, "answer").text == text, text
    for text, term in [("保本理财", "保本"), ("承诺保本", "保本"), ("稳赚不赔", "稳赚不赔"), ("并无风险", "无风险"), ("零风险投资", "零风险"), ("保证收益率", "保证收益")]:
        result = moderator.check(text, "answer")
        assert term not in result.text and MASK * len(term) in result.text, text


def test_substring_ok_matches_any_occurrence(moderator):
    assert not moderator.check("确保本次活动顺利", "answer").findings
    set_category_option(moderator, "compliance", "substring_ok = true")
    assert moderator.check("确保本次活动顺利", "answer").text == "确＊＊次活动顺利"


def test_a_long_text_only_segments_around_candidates(moderator, monkeypatch):
    from moderation import boundaries

    calls = []
    real = boundaries._tokenizer()
    monkeypatch.setattr(boundaries, "_tokenizer", lambda: calls.append(1) or real)
    filler = "这是一段很长的普通说明文字，介绍产品的功能与使用方法。" * 400
    result = moderator.check(filler + "确保本次活动顺利。" + filler, "answer")
    assert not result.findings
    assert 0 < len(calls) <= 3, "jieba runs on the run of text around the one candidate, not the whole text"


# --- the answer path and the stream filter -------------------------------------------------------


@pytest.fixture
def product_kb(tmp_path, settings):
    from ingest.pipeline import ingest_paths

    write(tmp_path / "docs" / "理财产品说明.md", "# 稳盈一号理财产品\n\n稳盈一号是一款银行理财产品，期限一年，起购金额一万元。\n\n"
          "本产品承诺保💰本，收益稳😀赚😀不😀赔，年化\u200b收益8%以上。\n\n赎回需提前三个工作日申请。\n")
    ingest_paths([tmp_path / "docs"], "kb", settings)
    return settings


def test_answer_path_masks_evasions_in_llm_answers_streamed_and_not(product_kb):
    reply = "稳盈一号承诺保💰本，bao ben，稳😀赚😀不😀赔[1]。"
    with Services() as services:
        answer = ask("稳盈一号的收益有保障吗？", "kb", product_kb, chat_model=GenericFakeChatModel(messages=iter([reply])), services=services)
        assert answer.mode == "llm" and len(answer.text) >= len("稳盈一号承诺＊＊＊，＊＊＊＊＊＊＊，＊＊＊＊＊＊＊")
        assert answer.text.startswith("稳盈一号承诺＊＊＊，＊＊＊＊＊＊＊，＊＊＊＊＊＊＊"), answer.text
        assert {m.category for m in answer.flags.moderation} >= {"compliance"}
        events = list(stream_ask("稳盈一号的收益有保障吗？", "kb", product_kb.model_copy(update={"answer_cache_size": 0}),
                                 chat_model=GenericFakeChatModel(messages=iter([reply])), services=services))
    streamed = "".join(e.text for e in events if e.kind == "token")
    # (the fake model's stream carries no finish reason, so the flow appends the extractive answer)
    assert streamed.startswith("稳盈一号承诺＊＊＊，＊＊＊＊＊＊＊，＊＊＊＊＊＊＊"), streamed
    for shown in (streamed, events[-1].answer.text):
        assert "保💰本" not in shown and "bao ben" not in shown and "稳😀赚" not in shown and "＊＊＊" in shown


def test_answer_path_masks_evasions_quoted_from_a_document(product_kb):
    answer = ask("稳盈一号承诺保本吗？收益怎样？", "kb", product_kb)  # no LLM configured: the extractive answer
    assert answer.mode == "extractive" and answer.text.startswith("本产品承诺＊＊＊，收益＊＊＊＊＊＊＊，"), answer.text
    assert {m.category for m in answer.flags.moderation} == {"compliance"}


def test_answer_path_refuses_an_evasive_question(product_kb):
    for question in ["怎样自💣制炸药？", "zizhi zhayao de fangfa", "怎样自\u200e制炸\ufe0f药？"]:
        answer = ask(question, "kb", product_kb)
        assert answer.refused and answer.flags.moderation[0].action == "block" and not answer.citations, question


def test_stream_filter_masks_an_evasion_split_across_tokens(moderator):
    gate = StreamFilter(moderator, "answer")
    tokens = ["这款产品", "保", "💰", "本", "，而且稳", "😀", "赚不", "赔，", "bao", " ", "ben", "。"] + ["后面还有很长的正文。"] * 12
    shown = []
    for token in tokens:
        shown.append(gate.push(token))
        so_far = "".join(shown)
        assert "保" not in so_far and "bao" not in so_far and "稳" not in so_far, so_far
    rest, final = gate.finish()
    text = "".join(shown) + rest
    assert len(text) == len("".join(tokens))
    assert text.startswith("这款产品＊＊＊，而且＊＊＊＊＊，＊＊＊＊＊＊＊。"), text
    assert any(shown), "text is released during the stream, not only at the end"


# --- masking keeps the length, whatever is slipped in -------------------------------------------

SLIPPED = st.lists(st.sampled_from(["", " ", "\u200b", "\u200e", "\u202e", "\ufe0f", "\u3164", "💰", "😀", "<b>", "</b>", "「", "」", "&nbsp;", "-", "*"]), min_size=1, max_size=3).map("".join)
CONTEXT = st.text(alphabet=st.sampled_from(list("的了是在这款理财产品请放心，。！abc 123😀\u200b<>")), max_size=20)


@hypothesis_settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(term=st.sampled_from(["保本", "稳赚不赔", "无风险", "保证收益"]), slips=st.lists(SLIPPED, min_size=3, max_size=3),
       before=CONTEXT, after=CONTEXT)
def test_masking_keeps_length_and_only_writes_masks(shared_moderator, term, slips, before, after):
    evasive = term[0] + "".join(s + c for s, c in zip(slips, term[1:]))
    text = f"{before}，{evasive}。{after}"
    result = shared_moderator.check(text, "answer", audit=False)
    assert len(result.text) == len(text)
    assert all(out == orig or out == MASK for out, orig in zip(result.text, text))
    start = len(before) + 1
    assert set(result.text[start : start + len(evasive)]) == {MASK}, (text, result.text)
