"""Evaluation reports: ``report.json`` (every record and the aggregate), ``report.md`` and
``report.html`` (aggregate table, per-metric plots, the 10 worst questions with their passages), and
the side-by-side comparison of two runs."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

from core.markdown_html import markdown_page
from eval.runner import EvalRecord, aggregate, records_to_json

METRIC_ORDER = [
    "hit_at_1", "hit_at_5", "recall_at_5", "mrr_at_10", "ndcg_at_10", "exact_match", "char_f1", "rouge_l",
    "citation_precision", "citation_recall", "refusal_accuracy", "faithfulness", "answer_relevance",
]


def _fmt(value: Any) -> str:
    return "–" if value is None else f"{value:.3f}" if isinstance(value, float) else str(value)


def _badness(r: EvalRecord) -> tuple[float, float]:
    """Worst first: retrieval misses, then low answer F1; unanswerable questions answered count as worst."""
    if r.error:
        return (-2.0, 0.0)
    if not r.answerable:
        return (-1.0, 0.0) if not r.refused else (9.0, 9.0)
    return (r.metrics.get("hit_at_5") or 0.0, r.metrics.get("char_f1") or 0.0)


def worst(records: list[EvalRecord], n: int = 10) -> list[EvalRecord]:
    return sorted(records, key=_badness)[:n]


def _plots(records: list[EvalRecord], agg: dict[str, Any]) -> bytes:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = [k for k in METRIC_ORDER if agg.get(k) is not None]
    f1 = [r.metrics["char_f1"] for r in records if r.metrics.get("char_f1") is not None]
    total = [r.timings_ms["total"] for r in records if "total" in r.timings_ms]
    curve = agg.get("refusal_curve") or []
    fig, axes = plt.subplots(1, 4 if curve else 3, figsize=(20 if curve else 15, 4))
    axes[0].barh(names, [agg[k] for k in names], color="#4c78a8")
    axes[0].set_xlim(0, 1)
    axes[0].invert_yaxis()
    axes[0].set_title("aggregate metrics")
    axes[1].hist(f1 or [0], bins=20, range=(0, 1), color="#59a14f")
    axes[1].set_title("per-question character F1")
    axes[2].hist(total or [0], bins=30, color="#f28e2b")
    axes[2].set_title("end-to-end latency (ms)")
    if curve:
        _plot_tradeoff(axes[3], curve, agg.get("relevance_floor"))
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100)
    plt.close(fig)
    return buf.getvalue()


def _plot_tradeoff(ax: Any, curve: list[dict[str, float]], floor: float | None) -> None:
    """Answered-when-answerable against refused-when-unanswerable, one point per floor."""
    ax.plot([p["refused"] for p in curve], [p["answered"] for p in curve], marker="o", ms=3, color="#e15759")
    if floor is not None:
        at = min(curve, key=lambda p: abs(p["floor"] - floor))
        ax.scatter([at["refused"]], [at["answered"]], s=80, color="#4c78a8", zorder=3, label=f"floor {floor:g}")
        ax.legend(loc="lower left")
    ax.set_xlim(0, 1.02)
    ax.set_ylim(0, 1.02)
    ax.set_xlabel("unanswerable refused")
    ax.set_ylabel("answerable answered")
    ax.set_title("refusal trade-off (each point a floor)")


def _tradeoff_lines(agg: dict[str, Any]) -> list[str]:
    curve = agg.get("refusal_curve") or []
    if not curve:
        return []
    floor = agg.get("relevance_floor")
    lines = ["", "## Refusal trade-off", "",
             "What each relevance floor would do on this set (best hit's relevance against the floor; with the "
             "built-in embedders relevance is the calibrated probability that a passage answers the question)."
             + (f" This run used floor {floor:g}." if floor is not None else ""), "",
             "| floor | answerable answered | unanswerable refused |", "|---|---|---|"]
    lines += [f"| {p['floor']:.2f}{' ←' if floor is not None and abs(p['floor'] - floor) < 0.025 else ''} | "
              f"{p['answered']:.3f} | {p['refused']:.3f} |" for p in curve]
    return lines


def markdown(agg: dict[str, Any], records: list[EvalRecord], meta: dict[str, Any]) -> str:
    lines = [f"# zhiwen evaluation: {meta.get('dataset')} on {meta.get('kb')}", "",
             f"{agg['questions']} questions, {agg['errors']} errors. Settings: `{json.dumps(meta.get('settings', {}), ensure_ascii=False)}`", "",
             "| metric | value |", "|---|---|"]
    lines += [f"| {k} | {_fmt(agg.get(k))} |" for k in METRIC_ORDER if k in agg]
    lines += ["", "| stage | p50 ms | p95 ms | mean ms |", "|---|---|---|---|"]
    lines += [f"| {s} | {v['p50']:.1f} | {v['p95']:.1f} | {v['mean']:.1f} |" for s, v in agg["latency_ms"].items() if v]
    lines += _tradeoff_lines(agg)
    lines += ["", "![plots](plots.png)", "", "## The 10 worst questions", ""]
    for r in worst(records):
        lines += [f"### {r.id}: {r.question}", "",
                  f"- expected: {' / '.join(r.answers) or '(unanswerable)'}; relevant: {', '.join(r.relevant) or '–'}",
                  f"- answer ({'refused' if r.refused else r.mode}): {r.prediction[:300]}",
                  f"- metrics: {', '.join(f'{k}={_fmt(v)}' for k, v in r.metrics.items())}" + (f"; error: {r.error}" if r.error else ""),
                  "- retrieved:"]
        lines += [f"  {i}. `{p['source']}`: {p['text'][:160].replace(chr(10), ' ')}" for i, p in enumerate(r.retrieved[:5], start=1)]
        lines.append("")
    return "\n".join(lines)


def write_report(out_dir: Path, records: list[EvalRecord], meta: dict[str, Any]) -> dict[str, Any]:
    agg = aggregate(records)
    (out_dir / "report.json").write_text(
        json.dumps({**meta, "aggregate": agg, "records": records_to_json(records)}, ensure_ascii=False, indent=1), encoding="utf-8"
    )
    png = _plots(records, agg)
    (out_dir / "plots.png").write_bytes(png)
    md = markdown(agg, records, meta)
    (out_dir / "report.md").write_text(md, encoding="utf-8")
    (out_dir / "report.html").write_text(markdown_page(md, "zhiwen evaluation", {"plots.png": png}), encoding="utf-8")
    return agg


def load_aggregate(run: Path) -> dict[str, Any]:
    path = run / "report.json" if run.is_dir() else run
    return json.loads(path.read_text(encoding="utf-8"))["aggregate"]


def compare(a: dict[str, Any], b: dict[str, Any]) -> list[tuple[str, Any, Any, float | None]]:
    """(metric, A, B, B − A) for every metric either run has, latency p50/p95 of the whole answer included."""
    rows = []
    for k in METRIC_ORDER:
        if k in a or k in b:
            va, vb = a.get(k), b.get(k)
            rows.append((k, va, vb, vb - va if va is not None and vb is not None else None))
    for q in ("p50", "p95"):
        va = a.get("latency_ms", {}).get("total", {}).get(q)
        vb = b.get("latency_ms", {}).get("total", {}).get(q)
        rows.append((f"latency_{q}_ms", va, vb, vb - va if va is not None and vb is not None else None))
    return rows
