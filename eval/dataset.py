"""QA datasets for batch evaluation: one JSON object per line.

    {"id": "q1", "question": "…", "answers": ["…"], "relevant_sources": ["docs/制度.md"],
     "relevant_chunks": [], "answerable": true}

``relevant_sources`` name documents by the path they were ingested under, or by a path suffix of it
(``制度.md`` matches ``docs/制度.md``). ``answerable: false`` marks questions the knowledge base cannot
answer, which should be refused.
"""

from __future__ import annotations

import json
import random
from pathlib import Path

from pydantic import BaseModel, Field, ValidationError

from core.errors import ZhiwenError


class QAItem(BaseModel):
    id: str
    question: str
    answers: list[str] = Field(default_factory=list)
    relevant_sources: list[str] = Field(default_factory=list)
    relevant_chunks: list[str] = Field(default_factory=list)
    answerable: bool = True


class DatasetError(ZhiwenError):
    pass


def load_dataset(path: Path) -> list[QAItem]:
    items: list[QAItem] = []
    seen: set[str] = set()
    try:
        lines = Path(path).read_text(encoding="utf-8-sig").splitlines()
    except OSError as exc:
        raise DatasetError(f"无法读取数据集 {path} (cannot read: {exc.strerror})")
    except UnicodeDecodeError:
        raise DatasetError(f"数据集 {path} 不是 UTF-8 编码 (not UTF-8): 请另存为 UTF-8")
    for lineno, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            item = QAItem.model_validate_json(line)
        except ValidationError as exc:
            first = exc.errors()[0]
            raise DatasetError(
                f"{path} 第 {lineno} 行不合法 (line {lineno}): {'.'.join(map(str, first['loc'])) or 'JSON'}: {first['msg']}"
            )
        if item.id in seen:
            raise DatasetError(f"{path} 第 {lineno} 行: id {item.id!r} 重复 (duplicate id)")
        seen.add(item.id)
        items.append(item)
    if not items:
        raise DatasetError(f"{path} 中没有问题 (no questions)")
    return items


def write_dataset(items: list[QAItem], path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(item.model_dump_json() + "\n" for item in items), encoding="utf-8")


def source_matches(retrieved: str, relevant: str) -> bool:
    """``docs/制度.md`` is matched by ``docs/制度.md``, ``制度.md`` or ``/abs/path/docs/制度.md``."""
    a, b = retrieved.replace("\\", "/"), relevant.replace("\\", "/")
    return a == b or a.endswith("/" + b.lstrip("./")) or b.endswith("/" + a.lstrip("./"))


def build_from_squad(squad_json: Path, out_dir: Path, holdout: float = 0.0, seed: int = 0) -> tuple[Path, Path]:
    """SQuAD-style JSON (e.g. CMRC 2018) → a corpus folder (one titled Markdown file per paragraph) and
    a question set whose relevant source is the question's own paragraph and whose answers are its spans.
    ``holdout`` keeps that share of paragraphs out of the corpus: their questions become unanswerable."""
    data = json.loads(Path(squad_json).read_text(encoding="utf-8"))["data"]
    corpus = out_dir / "corpus"
    corpus.mkdir(parents=True, exist_ok=True)
    paragraphs = [(a["title"], p) for a in data for p in a["paragraphs"]]
    held = set(random.Random(seed).sample(range(len(paragraphs)), int(round(holdout * len(paragraphs)))))
    items: list[QAItem] = []
    for index, (title, para) in enumerate(paragraphs):
        name = f"{index:04d}.md"
        if index not in held:
            (corpus / name).write_text(f"# {title}\n\n{para['context']}\n", encoding="utf-8")
        for qa in para["qas"]:
            answers = list(dict.fromkeys(a["text"] for a in qa.get("answers", [])))
            items.append(QAItem(id=qa["id"], question=qa["question"], answers=answers,
                                relevant_sources=[name] if index not in held else [], answerable=index not in held))
    questions = out_dir / "questions.jsonl"
    write_dataset(items, questions)
    return corpus, questions


def check_against_folder(items: list[QAItem], docs: Path) -> list[str]:
    """Problems with a QA file written for a folder of documents: relevant sources that are not there."""
    files = [str(p.relative_to(docs)) for p in docs.rglob("*") if p.is_file()]
    problems = []
    for item in items:
        for source in item.relevant_sources:
            if not any(source_matches(f, source) for f in files):
                problems.append(f"{item.id}: relevant source {source!r} is not in {docs}")
    return problems


def build_from_folder(docs: Path, qa_jsonl: Path, out_dir: Path) -> Path:
    """A folder of documents plus a QA JSONL written for it → a checked question set whose relevant
    sources are the documents' paths as `zhiwen ingest DOCS` will record them."""
    items = load_dataset(qa_jsonl)
    problems = check_against_folder(items, docs)
    if problems:
        raise DatasetError("问题集与文档目录不一致 (QA file and folder disagree):\n" + "\n".join(problems[:20]))
    files = [p for p in docs.rglob("*") if p.is_file()]
    fixed = []
    for item in items:
        sources = [str(next(f for f in files if source_matches(str(f.relative_to(docs)), s))) for s in item.relevant_sources]
        fixed.append(item.model_copy(update={"relevant_sources": sources}))
    questions = out_dir / "questions.jsonl"
    write_dataset(fixed, questions)
    return questions
