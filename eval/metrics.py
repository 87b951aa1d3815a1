"""Metrics of a batch QA evaluation: retrieval, answers, citations, refusals, latency.

Every metric is a small pure function; its docstring is the definition shown to users.

Conventions shared by all metrics:

- A metric that is undefined for one question returns ``None`` (for example recall when the
  question has no relevant passage); :func:`mean` skips ``None``, so the question simply does not
  count towards that metric's average.
- Retrieval metrics take ``retrieved`` (ids ranked best first, as returned) and ``relevant`` (the
  set of correct ids). Ranks are 1-based positions in ``retrieved``. An id that appears several
  times (several chunks of one document) counts once, at its first position: its later
  occurrences score nothing, but still take up their slot in the top k (k is "the first k
  results as returned").
- Answer metrics compare a ``prediction`` with a list of acceptable ``references`` and return
  the best score over the references, in 0..1. Both sides are normalised by
  :func:`normalize_answer` / tokenised by :func:`mixed_tokens` first. When the prediction and a
  reference both normalise to nothing they agree (1.0); when only one does, the score is 0.0.
"""

from __future__ import annotations

import math
import re
import unicodedata
from collections import Counter
from collections.abc import Collection, Iterable, Sequence
from functools import lru_cache

from core.text import to_simplified

__all__ = [
    "hit_at_k",
    "recall_at_k",
    "mrr_at_k",
    "ndcg_at_k",
    "normalize_answer",
    "mixed_tokens",
    "exact_match",
    "char_f1",
    "rouge_l",
    "bleu",
    "citation_precision",
    "citation_recall",
    "refusal_accuracy",
    "mean",
    "percentile",
    "latency_summary",
]

# --------------------------------------------------------------------------------------------
# Retrieval
# --------------------------------------------------------------------------------------------


def _check_k(k: int) -> None:
    if k < 1:
        raise ValueError(f"k must be at least 1, got {k}")


def _first_hits(retrieved: Sequence[str], relevant: Collection[str], k: int) -> list[int]:
    """1-based ranks, within the top k, of the first occurrence of each relevant id."""
    seen: set[str] = set()
    ranks: list[int] = []
    for rank, doc_id in enumerate(retrieved[:k], start=1):
        if doc_id in seen:
            continue
        seen.add(doc_id)
        if doc_id in relevant:
            ranks.append(rank)
    return ranks


def hit_at_k(retrieved: Sequence[str], relevant: Collection[str], k: int) -> float | None:
    """Hit@k: 1.0 if at least one relevant id is among the first k retrieved, else 0.0.

    ``None`` when ``relevant`` is empty (nothing could be hit; the question is skipped when
    averaging). Raises ``ValueError`` when k < 1.
    """
    _check_k(k)
    relevant = set(relevant)
    if not relevant:
        return None
    return 1.0 if _first_hits(retrieved, relevant, k) else 0.0


def recall_at_k(retrieved: Sequence[str], relevant: Collection[str], k: int) -> float | None:
    """Recall@k: the share of the relevant ids found among the first k retrieved.

    recall@k = |distinct relevant ids in the top k| / |relevant|. An id retrieved several times
    counts once. ``None`` when ``relevant`` is empty (recall is undefined; the question is skipped
    when averaging). Raises ``ValueError`` when k < 1.
    """
    _check_k(k)
    relevant = set(relevant)
    if not relevant:
        return None
    return len(_first_hits(retrieved, relevant, k)) / len(relevant)


def mrr_at_k(retrieved: Sequence[str], relevant: Collection[str], k: int = 10) -> float | None:
    """Reciprocal rank@k: 1 / rank of the first relevant id among the first k retrieved, else 0.

    Averaged over questions this is MRR@k. ``None`` when ``relevant`` is empty. Raises
    ``ValueError`` when k < 1.
    """
    _check_k(k)
    relevant = set(relevant)
    if not relevant:
        return None
    ranks = _first_hits(retrieved, relevant, k)
    return 1.0 / ranks[0] if ranks else 0.0


def ndcg_at_k(retrieved: Sequence[str], relevant: Collection[str], k: int = 10) -> float | None:
    """nDCG@k with binary gains and a log2 discount.

    DCG@k = sum over relevant ids in the top k (each at its first position, rank r, 1-based) of
    1 / log2(r + 1). The ideal DCG puts min(|relevant|, k) relevant ids at ranks 1, 2, ...:
    IDCG@k = sum_{r=1..min(|relevant|, k)} 1 / log2(r + 1). nDCG@k = DCG@k / IDCG@k, in 0..1.
    A repeated id gains nothing at its later positions. ``None`` when ``relevant`` is empty.
    Raises ``ValueError`` when k < 1.
    """
    _check_k(k)
    relevant = set(relevant)
    if not relevant:
        return None
    dcg = sum(1.0 / math.log2(r + 1) for r in _first_hits(retrieved, relevant, k))
    idcg = sum(1.0 / math.log2(r + 1) for r in range(1, min(len(relevant), k) + 1))
    return dcg / idcg


# --------------------------------------------------------------------------------------------
# Answers
# --------------------------------------------------------------------------------------------

# Citation markers as the answerers write them: [1], [2][3], [1, 2], 【1】, ［1］ (as llm.citations).
_CITATION_RE = re.compile(r"[\[【［]\s*\d{1,3}(?:\s*[,，、]\s*\d{1,3})*\s*[\]】］]")
# CJK ideographs (all extensions, compatibility ideographs) and 〇: each one is its own token.
_CJK = "\u3007\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\U00020000-\U0003134f"
_CJK_RE = f"[{_CJK}]"
# A letter or digit that is not a CJK ideograph.
_ALNUM = rf"(?:(?!{_CJK_RE})[^\W_])"
# Decimal point between digits (kept: "3.5" is not "35") and thousands separators (dropped).
_DECIMAL_RE = re.compile(r"(?<=\d)\.(?=\d)")
_THOUSANDS_RE = re.compile(r"(?<=\d),(?=\d{3}(?!\d))")
_DECIMAL_MARK = "\ue000"  # private-use placeholder, protects decimal points from punctuation removal
# Apostrophes, hyphens and periods join what they separate ("don't" → "dont", "e-mail" → "email",
# "U.S." → "us"); every other punctuation mark or symbol separates tokens ("2018,2019").
_JOIN_RE = re.compile("['\u2019\\-\u2010\u2011.]")
_SPLIT_RE = re.compile(rf"[^{_CJK}\w\s{_DECIMAL_MARK}]|_")
_TOKEN_RE = re.compile(rf"{_CJK_RE}|(?:{_ALNUM}|{_DECIMAL_MARK})+")
_ARTICLES = frozenset({"a", "an", "the"})


def mixed_tokens(text: str) -> list[str]:
    """The tokens of an answer, after normalisation (see :func:`normalize_answer`).

    Mixed segmentation, as in the CMRC 2018 evaluation: every CJK character is one token; a run
    of other letters and digits (an English word, a number such as "2018" or "3.5") is one token.
    Whitespace and punctuation separate tokens, except apostrophes, hyphens and periods, which
    join their neighbours ("don't" → dont, "ω-force" → ωforce, "U.S." → us); articles standing
    as separate words are dropped. Example: "光荣和ω-force公司" → 光 / 荣 / 和 / ωforce / 公 / 司;
    "the 2018, 2019 seasons" → 2018 / 2019 / seasons.
    """
    text = _CITATION_RE.sub(" ", text)
    text = to_simplified(unicodedata.normalize("NFKC", text).lower())
    text = _THOUSANDS_RE.sub("", text)
    text = _DECIMAL_RE.sub(_DECIMAL_MARK, text)
    text = _SPLIT_RE.sub(" ", _JOIN_RE.sub("", text))
    tokens: list[str] = []
    for word in text.split():
        if word in _ARTICLES:
            continue
        tokens.extend(t.replace(_DECIMAL_MARK, ".") for t in _TOKEN_RE.findall(word))
    return tokens


def normalize_answer(text: str) -> str:
    """The normalised form of an answer, which :func:`exact_match` compares.

    In order:
    1. citation markers such as "[1]", "[2][3]", "[1, 2]" or "【1】" are removed;
    2. Unicode NFKC (full-width "ＡＰＩ" → "API"), lower case, Traditional → Simplified Chinese;
    3. punctuation and symbols, Chinese and ASCII, are deleted ("ω-force" → "ωforce",
       "don't" → "dont", "《光荣》。" → "光荣"), except a decimal point between digits ("3.5"
       stays, so it differs from "35"); thousands separators go too ("1,000" → "1000");
    4. the English articles "a", "an", "the" are removed when they stand as separate words
       ("the answer" → "answer", but "A股" keeps its "a");
    5. whitespace is removed.
    What remains is CJK characters, letters and digits (and decimal points inside numbers).
    """
    return "".join(mixed_tokens(text))


def _best(prediction: str, references: Sequence[str], score) -> float:
    if isinstance(references, str) or not references:
        raise ValueError("references must be a non-empty list of strings")
    pred = mixed_tokens(prediction)
    best = 0.0
    for ref in references:
        ref_tokens = mixed_tokens(ref)
        if not pred or not ref_tokens:
            value = 1.0 if not pred and not ref_tokens else 0.0
        else:
            value = score(pred, ref_tokens, prediction, ref)
        best = max(best, value)
    return best


def exact_match(prediction: str, references: Sequence[str]) -> float:
    """Exact match: 1.0 if the normalised prediction equals a normalised reference, else 0.0.

    Normalisation is :func:`normalize_answer` (citation markers removed, NFKC, lower case,
    Traditional → Simplified, no punctuation, articles or whitespace), so "光榮" matches "光荣".
    Raises ``ValueError`` when ``references`` is empty.
    """
    return _best(prediction, references, lambda p, r, *_: 1.0 if "".join(p) == "".join(r) else 0.0)


def _f1(pred: list[str], ref: list[str], *_) -> float:
    common = sum((Counter(pred) & Counter(ref)).values())
    if common == 0:
        return 0.0
    precision, recall = common / len(pred), common / len(ref)
    return 2 * precision * recall / (precision + recall)


def char_f1(prediction: str, references: Sequence[str]) -> float:
    """Character F1 over mixed tokens (each CJK character, each English word or number).

    With the prediction's and the reference's tokens as multisets (see :func:`mixed_tokens`),
    common = size of their intersection (a token counts as often as it appears in both),
    precision = common / |prediction tokens|, recall = common / |reference tokens|,
    F1 = 2 · precision · recall / (precision + recall) (0 when nothing is common); the best F1
    over the references. Word order does not matter (see :func:`rouge_l` for an order-aware
    score; the official CMRC 2018 script's "F1" is in fact LCS-based, like ROUGE-L).
    Raises ``ValueError`` when ``references`` is empty.
    """
    return _best(prediction, references, _f1)


class _MixedTokenizer:
    """The tokenizer object rouge-score calls: ``tokenize(text)`` → mixed tokens."""

    def tokenize(self, text: str) -> list[str]:
        return mixed_tokens(text)


@lru_cache(maxsize=1)
def _rouge_scorer():
    from rouge_score.rouge_scorer import RougeScorer

    return RougeScorer(["rougeL"], tokenizer=_MixedTokenizer())


def rouge_l(prediction: str, references: Sequence[str]) -> float:
    """ROUGE-L F-measure over mixed tokens (each CJK character, each English word or number).

    With LCS = the length of the longest common subsequence of the prediction's and the
    reference's tokens (in order, not necessarily contiguous), precision = LCS / |prediction|,
    recall = LCS / |reference|, F = 2 · precision · recall / (precision + recall); the best F over
    the references. Computed by the ``rouge-score`` package with the tokens of
    :func:`mixed_tokens`. Raises ``ValueError`` when ``references`` is empty.
    """
    scorer = _rouge_scorer()
    return _best(
        prediction, references,
        lambda p, r, pred_text, ref_text: scorer.score(ref_text, pred_text)["rougeL"].fmeasure,
    )


def _bleu(pred: list[str], ref: list[str], *_) -> float:
    import sacrebleu

    score = sacrebleu.sentence_bleu(" ".join(pred), [" ".join(ref)], tokenize="zh").score / 100.0
    return min(1.0, max(0.0, score))


def bleu(prediction: str, references: Sequence[str]) -> float:
    """Sentence BLEU (sacrebleu, ``tokenize="zh"``: one token per Chinese character), in 0..1.

    Geometric mean of the clipped 1- to 4-gram precisions (sacrebleu's default "exp" smoothing
    and effective order: n-gram orders longer than the sentence are left out) times the brevity
    penalty min(1, exp(1 − |reference| / |prediction|)); sacrebleu's 0..100 score divided by 100.
    The texts are normalised as for the other answer metrics (citation markers, punctuation and
    articles removed, Traditional → Simplified, lower case) before sacrebleu tokenises them.
    Each reference is scored on its own and the best score is kept (not multi-reference BLEU).
    Raises ``ValueError`` when ``references`` is empty.
    """
    return _best(prediction, references, _bleu)


# --------------------------------------------------------------------------------------------
# Citations and refusals
# --------------------------------------------------------------------------------------------


def citation_precision(cited: Iterable[str], relevant: Collection[str]) -> float | None:
    """Citation precision: the share of the cited passages that are relevant.

    |distinct cited ∩ relevant| / |distinct cited|; a passage cited twice counts once. ``None``
    when nothing was cited (skipped when averaging).
    """
    cited_set = set(cited)
    if not cited_set:
        return None
    return len(cited_set & set(relevant)) / len(cited_set)


def citation_recall(cited: Iterable[str], relevant: Collection[str]) -> float | None:
    """Citation recall: the share of the relevant passages that were cited.

    |distinct cited ∩ relevant| / |relevant|. ``None`` when there is no relevant passage
    (skipped when averaging).
    """
    relevant_set = set(relevant)
    if not relevant_set:
        return None
    return len(set(cited) & relevant_set) / len(relevant_set)


def refusal_accuracy(records: Iterable[tuple[bool, bool]]) -> float | None:
    """Refusal accuracy: the share of questions where the assistant refused exactly when it should.

    Each record is ``(answerable, refused)``; it is correct when the question was answerable and
    not refused, or not answerable and refused. ``None`` when there are no records.
    """
    outcomes = [bool(answerable) != bool(refused) for answerable, refused in records]
    if not outcomes:
        return None
    return sum(outcomes) / len(outcomes)


TRADEOFF_FLOORS = tuple(round(0.05 * i, 2) for i in range(21))


def refusal_tradeoff(records: Iterable[tuple[bool, float]], floors: Sequence[float] = TRADEOFF_FLOORS) -> list[dict[str, float]]:
    """What each possible floor would do on these questions: the share of answerable ones still
    answered and of unanswerable ones refused, from each question's best hit relevance. Empty unless
    both kinds are present. (Retrieval's side only: an LLM may still refuse an answered question.)"""
    pairs = [(bool(a), float(r)) for a, r in records]
    answerable = [r for a, r in pairs if a]
    unanswerable = [r for a, r in pairs if not a]
    if not answerable or not unanswerable:
        return []
    return [
        {"floor": f, "answered": sum(r >= f for r in answerable) / len(answerable),
         "refused": sum(r < f for r in unanswerable) / len(unanswerable)}
        for f in floors
    ]


# --------------------------------------------------------------------------------------------
# Aggregation and latency
# --------------------------------------------------------------------------------------------


def mean(values: Iterable[float | None]) -> float | None:
    """Arithmetic mean of the values that are not ``None``; ``None`` when there are none."""
    kept = [float(v) for v in values if v is not None]
    if not kept:
        return None
    return sum(kept) / len(kept)


def percentile(values_ms: Iterable[float | None], p: float) -> float | None:
    """The p-th percentile (p in 0..100) with linear interpolation between closest ranks.

    numpy's default ("linear") method: with the n values sorted, v[0..n-1], the position is
    (n − 1) · p / 100 and the result interpolates linearly between the two values around it.
    ``None`` values are ignored; ``None`` when no value is left. Raises ``ValueError`` when p is
    outside 0..100.
    """
    if not 0 <= p <= 100:
        raise ValueError(f"p must be within 0..100, got {p}")
    kept = [float(v) for v in values_ms if v is not None]
    if not kept:
        return None
    import numpy as np

    return float(np.percentile(np.asarray(kept, dtype=float), p, method="linear"))


def latency_summary(values_ms: Iterable[float | None]) -> dict[str, float | None]:
    """Latency summary in milliseconds: ``{"p50": median, "p95": 95th percentile, "mean": mean}``.

    Percentiles as in :func:`percentile` (linear interpolation); ``None`` values are ignored and
    every entry is ``None`` when no value is left.
    """
    kept = [v for v in values_ms if v is not None]
    return {"p50": percentile(kept, 50), "p95": percentile(kept, 95), "mean": mean(kept)}
