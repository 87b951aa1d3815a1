"""Evaluation metrics against values computed by hand on tiny inputs (the arithmetic is in the comments)."""

from __future__ import annotations

import math

import pytest

from eval.metrics import (
    bleu,
    char_f1,
    citation_precision,
    citation_recall,
    exact_match,
    hit_at_k,
    latency_summary,
    mean,
    mixed_tokens,
    mrr_at_k,
    ndcg_at_k,
    normalize_answer,
    percentile,
    recall_at_k,
    refusal_accuracy,
    rouge_l,
)

approx = pytest.approx

# ------------------------------------------------------------------------------ retrieval

RETRIEVED = ["a", "b", "c"]
RELEVANT = {"b", "d"}  # "b" at rank 2, "d" never retrieved


def test_hit_at_k():
    # top 1 = [a]: no relevant id → 0; top 2 = [a, b]: b is relevant → 1.
    assert hit_at_k(RETRIEVED, RELEVANT, 1) == 0.0
    assert hit_at_k(RETRIEVED, RELEVANT, 2) == 1.0
    assert hit_at_k(RETRIEVED, RELEVANT, 3) == 1.0
    assert hit_at_k([], RELEVANT, 3) == 0.0


def test_recall_at_k():
    # top 1: 0 of the 2 relevant ids → 0; top 2 or 3: {b} of {b, d} → 1/2.
    assert recall_at_k(RETRIEVED, RELEVANT, 1) == 0.0
    assert recall_at_k(RETRIEVED, RELEVANT, 2) == 0.5
    assert recall_at_k(RETRIEVED, RELEVANT, 3) == 0.5
    # all of {a, c} in the top 3 → 2/2.
    assert recall_at_k(RETRIEVED, {"a", "c"}, 3) == 1.0


def test_mrr_at_k():
    # first relevant id is b at rank 2 → 1/2; with k = 1 it is cut off → 0.
    assert mrr_at_k(RETRIEVED, RELEVANT) == 0.5
    assert mrr_at_k(RETRIEVED, RELEVANT, k=1) == 0.0
    # c at rank 3, a at rank 1: the first one counts → 1/1.
    assert mrr_at_k(RETRIEVED, {"c", "a"}) == 1.0


def test_ndcg_at_k():
    # DCG@3 = gain of b at rank 2 = 1/log2(2+1) = 1/log2(3) ≈ 0.63093.
    # IDCG@3: min(|{b, d}|, 3) = 2 ideal hits at ranks 1, 2 = 1/log2(2) + 1/log2(3) = 1 + 0.63093.
    # nDCG@3 = 0.63093 / 1.63093 ≈ 0.38685.
    expected = (1 / math.log2(3)) / (1 + 1 / math.log2(3))
    assert ndcg_at_k(RETRIEVED, RELEVANT, k=3) == approx(expected)
    assert ndcg_at_k(RETRIEVED, RELEVANT, k=3) == approx(0.386853, abs=1e-6)
    # k = 1: DCG = 0 (rank 1 is "a"); IDCG = 1 → 0.
    assert ndcg_at_k(RETRIEVED, RELEVANT, k=1) == 0.0
    # Ideal uses min(|relevant|, k): relevant {a, b, c, d}, k = 2, retrieved [a, b] →
    # DCG = 1 + 1/log2(3) = IDCG (two ideal hits) → 1.0, although c and d are never found.
    assert ndcg_at_k(["a", "b"], {"a", "b", "c", "d"}, k=2) == approx(1.0)
    # A single relevant id at rank 3: 1/log2(4) = 0.5 over IDCG = 1 → 0.5.
    assert ndcg_at_k(["x", "y", "z"], {"z"}) == approx(0.5)


def test_duplicates_count_once_at_their_first_position():
    # Two chunks of document "a", then "b": ranks a=1 (a again at 2 scores nothing), b=3.
    retrieved = ["a", "a", "b"]
    relevant = {"a", "b"}
    # recall@2: top 2 = [a, a] holds one distinct relevant id → 1/2 (not 2/2).
    assert recall_at_k(retrieved, relevant, 2) == 0.5
    assert recall_at_k(retrieved, relevant, 3) == 1.0
    # nDCG@3: DCG = 1/log2(2) + 0 + 1/log2(4) = 1 + 0.5 = 1.5;
    # IDCG = 1 + 1/log2(3) ≈ 1.63093 → 1.5 / 1.63093 ≈ 0.91972 (≤ 1: no double gain).
    assert ndcg_at_k(retrieved, relevant, 3) == approx(1.5 / (1 + 1 / math.log2(3)))
    assert ndcg_at_k(["a", "a", "a"], {"a"}, 3) == approx(1.0)
    # The duplicate keeps its slot: relevant {b}: b's rank is 3, so MRR = 1/3, hit@2 = 0.
    assert mrr_at_k(retrieved, {"b"}) == approx(1 / 3)
    assert hit_at_k(retrieved, {"b"}, 2) == 0.0


def test_retrieval_with_no_relevant_is_undefined():
    for metric in (hit_at_k, recall_at_k, mrr_at_k, ndcg_at_k):
        assert metric(RETRIEVED, set(), 3) is None


def test_k_must_be_positive():
    with pytest.raises(ValueError):
        recall_at_k(RETRIEVED, RELEVANT, 0)


# ------------------------------------------------------------------------------ normalisation


def test_normalize_answer():
    # NFKC (full-width letters and space), lower case, articles dropped, whitespace removed.
    assert normalize_answer("ＡＰＩ　The Answer") == "apianswer"
    # Traditional → Simplified; Chinese and ASCII punctuation removed.
    assert normalize_answer("《光榮》，「特庫摩」!") == "光荣特库摩"
    # Citation markers of every shape are stripped.
    assert normalize_answer("北京[1]。上海[2][3]【4】[1, 2]") == "北京上海"
    # "a" is an article only as a separate word.
    assert normalize_answer("A股") == "a股"
    assert normalize_answer("a cat") == "cat"
    # Decimal points between digits are kept; thousands separators are not.
    assert normalize_answer("3.5亿") == "3.5亿"
    assert normalize_answer("3.5亿") != normalize_answer("35亿")
    assert normalize_answer("1,000人") == "1000人"


def test_mixed_tokens():
    # Each CJK character is a token; an English word / number is one token.
    assert mixed_tokens("光荣和ω-force公司") == ["光", "荣", "和", "ωforce", "公", "司"]
    assert mixed_tokens("2018年的NBA总决赛") == ["2018", "年", "的", "nba", "总", "决", "赛"]
    assert mixed_tokens("The quick, brown fox!") == ["quick", "brown", "fox"]
    assert mixed_tokens("the 2018, 2019 seasons") == ["2018", "2019", "seasons"]
    assert mixed_tokens("[1]") == []


# ------------------------------------------------------------------------------ answers


def test_exact_match_traditional_vs_simplified_and_citations():
    assert exact_match("光榮和ω-Force", ["光荣和ω-force"]) == 1.0
    assert exact_match("光荣和ω-force[1][2]。", ["光荣和ω-force"]) == 1.0
    assert exact_match("The Eiffel Tower.", ["eiffel tower"]) == 1.0
    assert exact_match("光荣", ["光荣公司"]) == 0.0
    # Best over references.
    assert exact_match("特库摩", ["光荣", "特庫摩"]) == 1.0


def test_char_f1_chinese():
    # prediction 光/荣/和/ωforce (4 tokens), reference 光/荣/和/ωforce/公/司 (6 tokens).
    # common = 4 → precision = 4/4 = 1, recall = 4/6 = 2/3, F1 = 2·1·(2/3) / (1 + 2/3) = 0.8.
    assert char_f1("光荣和ω-force", ["光荣和ω-force公司"]) == approx(0.8)
    # Best over references: the exact reference wins.
    assert char_f1("光荣和ω-force", ["光荣和ω-force公司", "光荣和ω-force"]) == 1.0
    # Multiset overlap: prediction 北/京/北/京 vs reference 北/京: common = min counts = 1 + 1 = 2
    # → precision 2/4, recall 2/2, F1 = 2·0.5·1 / 1.5 = 2/3.
    assert char_f1("北京北京", ["北京"]) == approx(2 / 3)
    assert char_f1("上海", ["北京"]) == 0.0


def test_char_f1_english_and_mixed():
    # [quick, brown, fox] vs [quick, fox, jumps]: common 2 → P = R = 2/3 → F1 = 2/3.
    assert char_f1("The quick brown fox", ["quick fox jumps"]) == approx(2 / 3)
    # [2018, 年] vs [2018, 年, 8, 月]: common 2 → P = 1, R = 1/2 → F1 = 2·0.5 / 1.5 = 2/3.
    assert char_f1("2018年[1]", ["2018年8月"]) == approx(2 / 3)


def test_empty_answers():
    # Both normalise to nothing → they agree; only one does → 0.
    assert exact_match("。", ["[1]"]) == 1.0
    assert char_f1("", ["!"]) == 1.0
    assert char_f1("", ["北京"]) == 0.0
    assert rouge_l("北京", [""]) == 0.0
    assert bleu("", ["北京"]) == 0.0
    with pytest.raises(ValueError):
        char_f1("北京", [])


def test_rouge_l():
    assert rouge_l("光荣和ω-force公司", ["光荣和ω-force公司"]) == approx(1.0)
    assert rouge_l("上海", ["北京"]) == 0.0
    # Same tokens as char-F1: LCS(光荣和ωforce, 光荣和ωforce公司) = 4 → P = 1, R = 4/6 → F = 0.8.
    assert rouge_l("光荣和ω-force", ["光荣和ω-force公司"]) == approx(0.8)
    # Order matters: prediction 天/气/今/天, reference 今/天/天/气. The longest common
    # subsequence has length 2 (e.g. 天气 or 今天; no common subsequence of length 3) →
    # P = 2/4, R = 2/4 → F = 0.5, while char-F1 (bag of tokens, all 4 shared) is 1.0.
    assert rouge_l("天气今天", ["今天天气"]) == approx(0.5)
    assert char_f1("天气今天", ["今天天气"]) == approx(1.0)
    # Traditional and citation markers are normalised as everywhere else.
    assert rouge_l("今天天氣[1]", ["今天天气"]) == approx(1.0)


def test_rouge_l_agrees_with_rouge_score_itself():
    from rouge_score.rouge_scorer import RougeScorer

    class Split:  # the hand-made token lists of the case above, separated by spaces
        def tokenize(self, text):
            return text.split()

    direct = RougeScorer(["rougeL"], tokenizer=Split()).score("今 天 天 气", "天 气 今 天")["rougeL"].fmeasure
    assert direct == approx(0.5)
    assert rouge_l("天气今天", ["今天天气"]) == approx(direct)


def test_bleu():
    assert bleu("今天天气很好", ["今天天气很好"]) == approx(1.0)
    assert bleu("今天天气很好", ["今天天氣很好[1]"]) == approx(1.0)
    assert bleu("上海", ["北京"]) == 0.0
    # prediction 今/天/天/气/很/好 vs reference 今/天/天/气/不/错 (6 tokens each, BP = 1):
    # 1-grams 4/6 (今 天 天 气); 2-grams 3/5 (今天 天天 天气); 3-grams 2/4 (今天天 天天气);
    # 4-grams 1/3 (今天天气). BLEU = (4/6 · 3/5 · 2/4 · 1/3)^(1/4) = (1/15)^(1/4) ≈ 0.50813.
    assert bleu("今天天气很好", ["今天天气不错"]) == approx((1 / 15) ** 0.25)
    # Best over references.
    assert bleu("今天天气很好", ["北京", "今天天气很好"]) == approx(1.0)


# ------------------------------------------------------------------------------ citations, refusals


def test_citation_precision_and_recall():
    # cited {p1, p2, p3}, relevant {p1, p4}: common {p1}.
    # precision = 1/3, recall = 1/2.
    assert citation_precision(["p1", "p2", "p3"], {"p1", "p4"}) == approx(1 / 3)
    assert citation_recall(["p1", "p2", "p3"], {"p1", "p4"}) == 0.5
    # A passage cited twice counts once: cited {p1}, relevant {p1, p4} → precision 1, recall 1/2.
    assert citation_precision(["p1", "p1"], {"p1", "p4"}) == 1.0
    assert citation_recall(["p1", "p1"], {"p1", "p4"}) == 0.5
    # Undefined cases.
    assert citation_precision([], {"p1"}) is None
    assert citation_recall(["p1"], set()) is None
    assert citation_precision(["p1"], set()) == 0.0
    assert citation_recall([], {"p1"}) == 0.0


def test_refusal_accuracy():
    # (answerable, refused): correct, wrong (refused an answerable one), correct, wrong → 2/4.
    records = [(True, False), (True, True), (False, True), (False, False)]
    assert refusal_accuracy(records) == 0.5
    assert refusal_accuracy([(False, True)]) == 1.0
    assert refusal_accuracy([]) is None


# ------------------------------------------------------------------------------ aggregation, latency


def test_mean_skips_none():
    # (1 + 0 + 0.5) / 3 = 0.5; the None is not counted.
    assert mean([1.0, None, 0.0, 0.5]) == 0.5
    assert mean([None, None]) is None
    assert mean([]) is None


def test_percentile_linear_interpolation():
    values = [10, 20, 30, 40]
    # position = (n - 1) · p / 100: p50 → 1.5 → 20 + 0.5·(30 - 20) = 25;
    # p95 → 2.85 → 30 + 0.85·(40 - 30) = 38.5; p0 → 10; p100 → 40.
    assert percentile(values, 50) == approx(25.0)
    assert percentile(values, 95) == approx(38.5)
    assert percentile(values, 0) == 10.0
    assert percentile(values, 100) == 40.0
    assert percentile([], 50) is None
    with pytest.raises(ValueError):
        percentile(values, 101)


def test_latency_summary():
    # p50 = 25, p95 = 38.5 (see above), mean = 100 / 4 = 25.
    assert latency_summary([40, 10, None, 30, 20]) == {
        "p50": approx(25.0), "p95": approx(38.5), "mean": approx(25.0),
    }
    assert latency_summary([]) == {"p50": None, "p95": None, "mean": None}
