"""Chunking never cuts inside a sentence (unless the sentence alone is too long), respects sizes,
overlaps by whole sentences, keeps headings and pages."""

from hypothesis import given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

from core.text import count_tokens, split_sentences
from ingest.chunking import chunk_text
from ingest.clean import clean_pages

SENTENCES = [
    "一线城市每晚不超过600元。", "二线城市每晚不超过400元！", "其他城市不超过300元？", "Reimbursement is due in 15 days.",
    "知问网关的P99延迟低于5毫秒。", "资安事件须于1小时内通报；", "The gateway speaks gRPC since v2.3.0.",
]


def _boundaries(text: str) -> set[int]:
    spans = list(split_sentences(text))
    return {a for a, _ in spans}, {b for _, b in spans}


@hsettings(max_examples=40, deadline=None)
@given(st.lists(st.sampled_from(SENTENCES), min_size=1, max_size=40), st.integers(8, 60), st.integers(0, 7))
def test_chunks_start_and_end_on_sentence_boundaries(picks, size, overlap):
    text = "".join(picks)
    starts, ends = _boundaries(text)
    chunks = chunk_text(text, None, size, overlap)
    assert chunks, "non-empty text gives chunks"
    too_long = [(a, b) for a, b in split_sentences(text) if count_tokens(text[a:b]) > size]

    def inside_too_long(pos: int) -> bool:
        return any(a <= pos <= b for a, b in too_long)

    for c in chunks:
        assert c.start in starts or inside_too_long(c.start), "a cut inside a sentence that fits"
        assert c.end in ends or inside_too_long(c.end), "a cut inside a sentence that fits"
        assert c.n_tokens <= size + 2
    covered = set()
    for c in chunks:
        covered.update(range(c.start, c.end))
    assert all(i in covered for a, b in split_sentences(text) for i in range(a, b) if not text[i].isspace()), "no text is lost"


def test_overlap_repeats_whole_previous_sentences():
    text = "".join(SENTENCES[:5])
    chunks = chunk_text(text, None, size=20, overlap=8)
    assert len(chunks) >= 2
    for prev, nxt in zip(chunks, chunks[1:]):
        assert nxt.start < prev.end, "consecutive chunks overlap"
        assert nxt.end > prev.end, "each chunk adds new text"


def test_long_sentence_is_cut_on_word_boundaries_only_when_needed():
    long = "这是一个没有任何标点符号而且非常非常长的句子" * 20 + "。"
    chunks = chunk_text("短句。" + long, None, size=30, overlap=0)
    assert chunks[0].n_tokens <= 30
    assert all(c.n_tokens <= 32 for c in chunks)
    assert "".join(("短句。" + long)[c.start : c.end] for c in chunks) == "短句。" + long


def test_headings_start_chunks_and_give_heading_paths():
    text = "# 差旅制度\n## 住宿标准\n一线城市每晚600元。\n## 报销时限\n出差结束后15个工作日内提交。"
    chunks = chunk_text(text, None, size=200, overlap=20)
    assert [c.heading_path for c in chunks] == [["差旅制度", "住宿标准"], ["差旅制度", "报销时限"]]
    assert text[chunks[0].start : chunks[0].end].startswith("# 差旅制度")
    assert text[chunks[1].start : chunks[1].end].startswith("## 报销时限")


def test_chunks_stay_within_pages_and_carry_page_numbers():
    cleaned = clean_pages(["第一页的内容。还有一句。", "第二页的内容。"])
    chunks = chunk_text(cleaned.text, cleaned.page_spans, size=200, overlap=20, paged=True)
    assert [c.page for c in chunks] == [1, 2]
    assert cleaned.text[chunks[1].start : chunks[1].end] == "第二页的内容。"


def test_cleaning_drops_boilerplate_and_invisible_characters():
    cleaned = clean_pages(["星河科技　内部资料\n住宿\u200b标准：每晚６００元。\n第 1 页", "星河科技　内部资料\n报销时限。\n第 2 页"])
    assert cleaned.text == "住宿标准：每晚600元。\n\n报销时限。"
