"""CMRC 2018 (SQuAD-style Chinese reading comprehension) as a retrieval corpus.

The dev set has 848 articles with one paragraph each and 3,219 questions. For retrieval evaluation
each paragraph becomes one Markdown file, ``{index:04d}.md`` containing ``# {title}\\n\\n{context}\\n``,
and a question's relevant document is the file of the paragraph it was asked about.
"""

from __future__ import annotations

import hashlib
import json
import random
from dataclasses import dataclass
from pathlib import Path

from core.text import opencc

DEFAULT_CMRC_DEV = Path(__file__).resolve().parents[1].parent / "shared/data/cmrc2018/cmrc2018_dev.json"


@dataclass(frozen=True)
class Question:
    id: str
    text: str
    answers: tuple[str, ...]
    paragraph: int  # index of the paragraph (and so of its file) the question was asked about


@dataclass(frozen=True)
class Paragraph:
    index: int
    title: str
    context: str
    questions: tuple[Question, ...]

    @property
    def filename(self) -> str:
        return f"{self.index:04d}.md"

    def markdown(self) -> str:
        return f"# {self.title}\n\n{self.context}\n"


def load_paragraphs(path: Path = DEFAULT_CMRC_DEV, limit: int | None = None) -> list[Paragraph]:
    """Every paragraph of every article, in file order; ``limit`` keeps the first N."""
    data = json.loads(Path(path).read_text(encoding="utf-8"))["data"]
    out: list[Paragraph] = []
    for article in data:
        for para in article["paragraphs"]:
            index = len(out)
            questions = tuple(
                Question(
                    id=qa["id"], text=qa["question"],
                    answers=tuple(a["text"] for a in qa.get("answers", [])), paragraph=index,
                )
                for qa in para["qas"]
            )
            out.append(Paragraph(index=index, title=article["title"], context=para["context"], questions=questions))
            if limit is not None and len(out) >= limit:
                return out
    return out


def write_markdown(paragraphs: list[Paragraph], folder: Path) -> list[Path]:
    """Write one ``{index:04d}.md`` file per paragraph into ``folder`` (created if needed)."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for p in paragraphs:
        path = folder / p.filename
        path.write_text(p.markdown(), encoding="utf-8")
        paths.append(path)
    return paths


def sample_questions(paragraphs: list[Paragraph], n: int, seed: int = 0) -> list[Question]:
    """``n`` questions drawn without replacement, reproducibly, from all questions of ``paragraphs``."""
    pool = [q for p in paragraphs for q in p.questions]
    return random.Random(seed).sample(pool, min(n, len(pool)))


DEV_BUCKETS = 3  # of 10: about 30% of the articles go to the dev split
SPLIT_RULE = "sha1(article title, UTF-8) as an integer, modulo 10, < 3 → dev, else test"


def split_of(paragraph: Paragraph, dev_buckets: int = DEV_BUCKETS) -> str:
    """``"dev"`` or ``"test"``, fixed by the article's title (see ``SPLIT_RULE``).

    A pure function of the title: no random generator, independent of file order and of
    ``load_paragraphs(limit=...)``; articles sharing a title land in the same split.
    """
    bucket = int(hashlib.sha1(paragraph.title.encode("utf-8")).hexdigest(), 16) % 10
    return "dev" if bucket < dev_buckets else "test"


def to_traditional(text: str, config: str = "s2twp") -> str:
    """Simplified → Traditional with OpenCC (default s2twp: Taiwan phrasing, as DRCD's paragraphs are
    written): how the DRCD-style benchmarks build their corpus from CMRC."""
    return opencc(config).convert(text)


def split_paragraphs(paragraphs: list[Paragraph], dev_buckets: int = DEV_BUCKETS) -> dict[str, list[Paragraph]]:
    """The paragraphs grouped by :func:`split_of`, in file order: ``{"dev": [...], "test": [...]}``."""
    out: dict[str, list[Paragraph]] = {"dev": [], "test": []}
    for p in paragraphs:
        out[split_of(p, dev_buckets)].append(p)
    return out
