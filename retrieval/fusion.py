"""Fusion of dense and BM25 rankings.

Weighted fusion is the default: on CMRC 2018 (see README), reciprocal-rank fusion let the weaker
dense side drag BM25's precision down, while max-normalised BM25 plus a down-weighted min-max
normalised cosine kept it and added recall. RRF stays available for comparison.
"""

from __future__ import annotations

import numpy as np


def weighted_fusion(
    bm25: dict[int, float], dense: dict[int, float], bm25_weight: float, dense_weight: float
) -> dict[int, float]:
    """bm25_weight · bm25/max(bm25) + dense_weight · min-max(cosine), over the union of candidates."""
    ids = set(bm25) | set(dense)
    top_bm25 = max(bm25.values(), default=0.0)
    cos = np.array([dense.get(i, 0.0) for i in ids], dtype=np.float64) if ids else np.zeros(0)
    lo, hi = (float(cos.min()), float(cos.max())) if len(cos) else (0.0, 0.0)
    span = hi - lo
    fused = {}
    for i in ids:
        b = bm25.get(i, 0.0) / top_bm25 if top_bm25 > 0 else 0.0
        d = (dense[i] - lo) / span if (i in dense and span > 0) else (1.0 if i in dense and dense else 0.0)
        fused[i] = bm25_weight * b + dense_weight * d
    return fused


def reciprocal_rank_fusion(rankings: list[list[int]], k: int = 60) -> dict[int, float]:
    fused: dict[int, float] = {}
    for ranking in rankings:
        for rank, i in enumerate(ranking, start=1):
            fused[i] = fused.get(i, 0.0) + 1.0 / (k + rank)
    return fused
