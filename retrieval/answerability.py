"""Calibrated answerability: P(this passage answers the question), learned, not hand-set.

A fixed floor on a similarity score cannot hold across embedders and phrasings: e5's cosines sit in
0.78–0.94 for every question, USE-m3's spread wide; a question that reuses the document's words has high
BM25 coverage, a paraphrase or an English question over Chinese text has none. So each hit gets a
vector of retrieval features (below) and a logistic regression turns them into a probability. The
model is fitted per embedder by ``python -m eval.fit_answerability`` on dev splits only (CMRC
2018 with held-out articles, the hand-written paraphrase dev split) and shipped as
``retrieval/calibration/<embedder>.json``; its coefficients are applied here with numpy, so serving
needs no scikit-learn.

The refusal floor is then a probability with a meaning: a hit whose estimated chance of answering
the question is below it is not used, and a question with no hit above it is refused. Classes were
balanced when fitting, so 0.5 means "as likely answerable as not" with no prior from the dev mix.
An embedder with no fitted file (a custom sentence-transformers model) keeps the legacy relevance,
mean(coverage, cosine), and its hand-set floor.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

from core.text import fold, is_mostly_cjk
from retrieval.fusion import CoverageGatedWeight, DenseWeight

CALIBRATION_DIR = Path(__file__).resolve().parent / "calibration"
DEFAULT_DENSE_WEIGHT = 0.5  # fusion weight without a calibration (tuned on CMRC with USE-m3)

# Per hit; the query-level ones repeat on every hit of one query.
FEATURES = (
    "coverage",     # IDF-weighted share of the question's terms in this chunk (BM25 side)
    "cosine",       # this chunk's cosine with the question (dense side)
    "cos_lift",     # cosine minus the mean cosine of the dense candidates: stands out for *this* question?
    "cos_gap",      # cosine minus the best candidate's cosine (≤ 0)
    "cov_gap",      # coverage minus the best candidate's coverage (≤ 0)
    "dense_top",    # 1 if this chunk is the dense retriever's first
    "bm25_top",     # 1 if this chunk is BM25's first
    "agree",        # 1 if both retrievers put the same chunk first (query level)
    "log_terms",    # log(1 + distinct content terms of the question)
    "cjk",          # 1 if the question is Chinese (English questions have no BM25 evidence on Chinese text)
    "cosine_en",    # cosine × (1 − cjk): lets English questions lean on the dense side alone
    "cos_z",        # cosine against this knowledge base's background (below), in robust standard units
    "cos_z_en",     # cos_z × (1 − cjk): English questions over Chinese text need their own slope (their
                    # off-topic cosines are noisier, so the same lift above background means less)
    "bg_sim",       # the question's cosine with the nearest background question (below): does it read
                    # like an everyday question about nothing in this knowledge base? (query level)
    "bg_margin",    # bg_sim minus this chunk's cosine: closer to everyday chatter than to this passage?
)

# Not a feature: the IDF share of the question's terms that no chunk contains. It was one until the
# dev set taught it the wrong sign (paraphrases use words the documents don't, so "nothing matches"
# counted for answering, and "周末带孩子去哪里爬山" got past the floor of the HR handbook); without it
# 5-fold dev off-topic refusals rose from 0.77 to 0.82 with the other rates unchanged.

BACKGROUND_FILE = CALIBRATION_DIR / "background_questions.txt"


@dataclass(frozen=True)
class Background:
    """How well questions about nothing in particular match one knowledge base, per language.

    e5's cosines are compressed and shift with the corpus: a Wikipedia-wide knowledge base matches
    any question at 0.85, a travel policy a cooking question at 0.80. So the knowledge base is asked
    the fixed off-topic questions of ``background_questions.txt`` (many domains, one or two each)
    and the median and spread of their best cosines become its baseline; a real question's cosine is
    judged by how far it stands above the baseline of its own language (English questions over Chinese
    text score lower across the board). Median and MAD, so a knowledge base that happens to be about
    one background topic moves the baseline little."""

    median: dict[bool, float]  # cjk? → median best cosine
    scale: dict[bool, float]
    # The background questions' own query vectors: a question's cosine with the nearest of them is the
    # bg_sim feature. On dev (USE-m3, 5-fold) it raised off-topic refusals from 0.64 to 0.77 and the
    # held-out background questions' from 0.79 to 0.85 at the same 95% of answerable ones answered.
    questions: np.ndarray | None = field(default=None, compare=False, repr=False)

    def question_similarity(self, query_vector: np.ndarray) -> float:
        if self.questions is None or not len(self.questions):
            return 0.0
        return float(np.max(self.questions @ query_vector))

    @classmethod
    def measure(cls, best_cosines: np.ndarray, cjk: np.ndarray, questions: np.ndarray | None = None) -> "Background":
        median, scale = {}, {}
        for lang in (True, False):
            values = best_cosines[cjk == lang]
            m = float(np.median(values)) if len(values) else 0.0
            median[lang] = m
            scale[lang] = max(1.4826 * float(np.median(np.abs(values - m))) if len(values) else 0.0, MIN_BACKGROUND_SCALE)
        return cls(median, scale, questions)

    def z(self, cosine: float, cjk: bool) -> float:
        return (cosine - self.median[cjk]) / self.scale[cjk]


MIN_BACKGROUND_SCALE = 0.005  # a cosine spread below this is noise, not a unit


@lru_cache(maxsize=1)
def background_questions(path: Path = BACKGROUND_FILE) -> tuple[str, ...]:
    return tuple(line.strip() for line in path.read_text(encoding="utf-8").splitlines() if line.strip() and not line.startswith("#"))


def background_vectors_path(embedder: str, directory: Path = CALIBRATION_DIR) -> Path:
    return directory / f"{embedder}.background.npy"


def embed_background(embedder: Any) -> np.ndarray:
    return np.vstack([embedder.embed_query(fold(q)) for q in background_questions()])


@lru_cache(maxsize=8)
def _background_vectors(embedder_name: str, embedder: Any) -> np.ndarray:
    """The background questions' query vectors: shipped beside the calibration (written by the fit, so a
    CLI process need not embed 150 questions before its first answer), else embedded once here."""
    path = background_vectors_path(embedder_name)
    if path.is_file():
        vectors = np.load(path)
        if vectors.shape == (len(background_questions()), embedder.dim):
            return vectors
    return embed_background(embedder)


def measure_background(vectors: Any, embedder: Any) -> Background:
    """The knowledge base's baseline: each background question's best cosine in ``vectors``."""
    questions = background_questions()
    queries = _background_vectors(embedder.name, embedder)
    best = np.array([(vectors.search(q, 1) or [(0, 0.0)])[0][1] for q in queries], dtype=np.float64)
    return Background.measure(best, np.array([is_mostly_cjk(q) for q in questions]), queries)


@dataclass(frozen=True)
class QueryStats:
    """What every hit of one query shares."""

    n_terms: int
    cjk: bool
    cos_mean: float
    best_cos: float
    best_cov: float
    dense_first: int | None
    bm25_first: int | None
    background: Background | None = None
    bg_sim: float = 0.0  # Background.question_similarity of the query vector


def hit_features(stats: QueryStats, chunk_id: int, coverage: float, cosine: float | None) -> list[float]:
    cos = float(cosine) if cosine is not None else stats.cos_mean
    cjk = 1.0 if stats.cjk else 0.0
    cos_z = stats.background.z(cos, stats.cjk) if stats.background is not None else 0.0
    return [
        coverage,
        cos,
        cos - stats.cos_mean,
        cos - stats.best_cos,
        coverage - stats.best_cov,
        1.0 if chunk_id == stats.dense_first else 0.0,
        1.0 if chunk_id == stats.bm25_first else 0.0,
        1.0 if stats.dense_first is not None and stats.dense_first == stats.bm25_first else 0.0,
        math.log1p(stats.n_terms),
        cjk,
        cos * (1.0 - cjk),
        cos_z,
        cos_z * (1.0 - cjk),
        stats.bg_sim,
        stats.bg_sim - cos,
    ]


@dataclass(frozen=True)
class Calibration:
    """A fitted logistic regression over ``FEATURES`` (standardised), for one embedder."""

    embedder: str
    mean: np.ndarray
    scale: np.ndarray
    coef: np.ndarray
    intercept: float
    threshold: float  # the shipped floor, chosen on dev (see the JSON's "threshold_rule")
    info: dict

    @property
    def dense_weight(self) -> DenseWeight:
        """The fusion weight of the dense side tuned on dev together with this calibration: gated on
        coverage (retrieval.fusion.CoverageGatedWeight) when the fit chose a gate, else one number."""
        semantic = float(self.info.get("dense_weight", DEFAULT_DENSE_WEIGHT))
        if "dense_weight_lexical" in self.info and "coverage_gate" in self.info:
            return CoverageGatedWeight(float(self.info["dense_weight_lexical"]), semantic, float(self.info["coverage_gate"]))
        return semantic

    def probability(self, features: np.ndarray) -> np.ndarray:
        x = (np.asarray(features, dtype=np.float64) - self.mean) / self.scale
        return 1.0 / (1.0 + np.exp(-(x @ self.coef + self.intercept)))

    def to_json(self) -> dict:
        return {
            "embedder": self.embedder, "features": list(FEATURES), "mean": self.mean.tolist(),
            "scale": self.scale.tolist(), "coef": self.coef.tolist(), "intercept": self.intercept,
            "threshold": self.threshold, **self.info,
        }

    @classmethod
    def from_json(cls, data: dict) -> "Calibration":
        if tuple(data["features"]) != FEATURES:
            raise ValueError(f"calibration for {data.get('embedder')!r} was fitted on other features: refit it")
        known = {"embedder", "features", "mean", "scale", "coef", "intercept", "threshold"}
        return cls(
            embedder=data["embedder"], mean=np.asarray(data["mean"]), scale=np.asarray(data["scale"]),
            coef=np.asarray(data["coef"]), intercept=float(data["intercept"]), threshold=float(data["threshold"]),
            info={k: v for k, v in data.items() if k not in known},
        )


def calibration_path(embedder: str, directory: Path = CALIBRATION_DIR) -> Path:
    return directory / f"{embedder}.json"


@lru_cache(maxsize=16)
def load_calibration(embedder: str) -> Calibration | None:
    """The shipped calibration for an embedder, or None (custom models: legacy relevance)."""
    path = calibration_path(embedder)
    if not path.is_file():
        return None
    return Calibration.from_json(json.loads(path.read_text(encoding="utf-8")))
