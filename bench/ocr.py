"""OCR benchmark: pages of known text rendered with Pillow, read back by ``ingest.ocr``, scored.

Pages: A4 at 150 dpi (1240×1754 px), 26 px characters (about 12 pt, body text), lines wrapped to the
page width, paragraphs from the bundled sample corpus (Chinese: 差旅报销制度.md, 员工手册.txt) and a fixed
English text. Two conditions: "scan" (black on white, as a scanner or a PDF renderer gives it) and
"photo" (off-white paper, grey ink, rotated 1°, slightly blurred, JPEG quality 80, as a phone photo of a
page gives it). Each page goes through ``ingest.ocr.ocr_image``, the same call ingest makes.

Measured
- seconds per page and pages/s on this machine's CPU (the engine is built and warmed first; its build
  time is reported on its own), and CPU seconds per page (all threads), which other load on a shared
  machine does not inflate as much as wall time;
- character accuracy = 1 − CER, CER = Levenshtein distance / reference length, after NFKC and with all
  whitespace removed from both sides (line breaks and paragraph joins are layout, not recognition; the
  Chinese model also tends to drop spaces between English words, which this measure does not count);
- lines below the low-confidence threshold (``ingest.ocr.LOW_CONFIDENCE``) that ingest would report.

Reproduce (from the repository root, with the virtualenv active and the ocr extra installed)::

    python -m bench.ocr               # 4 Chinese + 2 English pages per condition
    python -m bench.ocr --pages 2     # quick check

Progress goes to stderr; the Markdown table goes to stdout.
"""

from __future__ import annotations

import argparse
import glob
import io
import re
import sys
import time
import unicodedata
from dataclasses import dataclass
from pathlib import Path

from bench.common import log, machine_busy_seconds, machine_note

PAGE_PX = (1240, 1754)  # A4 at 150 dpi
MARGIN_PX = 110
FONT_PX = 26
LINE_PX = 42
PARAGRAPH_GAP_PX = 22

ENGLISH = """\
Zhiwen answers questions from a team's own documents and cites the passage behind every sentence.
When the knowledge base has nothing relevant, it says so instead of guessing.
Travel claims must be submitted within 15 working days after the trip ends. Hotel costs in tier-1 cities are capped at 600 yuan per night for staff and 800 yuan for managers.
Lost access cards must be reported to the administration office within 24 hours. A replacement card costs 50 yuan and is issued on the next working day.
Security incidents, such as a lost laptop, a suspected account compromise or a ransom message, must be reported to the security team within one hour.
Backups of production databases run every night at 02:00 and are kept for 30 days; a restore is tested on the first Monday of each month.
The gateway's median latency is 2 ms and its p99 latency is 5 ms at 10,000 requests per second on a single node.
"""


@dataclass
class PageResult:
    condition: str
    language: str
    chars: int
    edits: int
    seconds: float
    cpu_seconds: float  # CPU time of this process (all its threads): what a page costs, whatever else runs
    low_confidence: int


def cjk_font(size: int):
    """Noto Sans CJK's Simplified Chinese face: the collection's first face is the Japanese one, whose
    glyphs for simplified characters (门) differ from what Chinese documents print."""
    from PIL import ImageFont

    found = sorted(glob.glob("/usr/share/fonts/opentype/noto/NotoSansCJK*-Regular.ttc"))
    if not found:
        sys.exit("no CJK font: apt-get install fonts-noto-cjk (or `make browser`)")
    for index in range(5):
        font = ImageFont.truetype(found[0], size, index=index)
        if font.getname()[0].endswith(" SC"):
            return font
    return ImageFont.truetype(found[0], size)


def chinese_paragraphs() -> list[str]:
    """Body paragraphs of the bundled Chinese samples (headings and list markers dropped)."""
    from ingest.loaders import load_file

    corpus = Path(__file__).resolve().parents[1] / "samples" / "corpus"
    paragraphs = []
    for name in ("差旅报销制度.md", "员工手册.txt"):
        for line in load_file(corpus / name).pages[0].splitlines():
            line = re.sub(r"^(#+|[-*]|\d+[.、]|[一二三四五六七八九十]+、)\s*", "", line.strip())
            if len(line) >= 12:
                paragraphs.append(line)
    return paragraphs


def wrap(text: str, font, width: int) -> list[str]:
    """Greedy wrap by rendered width: by character for CJK, by word for Latin text."""
    tokens = re.findall(r"[A-Za-z0-9.,:;'()%-]+\s*|\s+|.", text)
    lines, current = [], ""
    for token in tokens:
        if current and font.getlength(current + token.rstrip()) > width:
            lines.append(current.rstrip())
            current = token.lstrip()
        else:
            current += token
    if current.strip():
        lines.append(current.rstrip())
    return lines


def render_page(paragraphs: list[str], font, photo: bool):
    """One page and the text on it (the paragraphs that fit, in order); the rest are left for the next."""
    from PIL import Image, ImageDraw, ImageFilter

    paper, ink = ((244, 240, 230), (60, 60, 70)) if photo else ((255, 255, 255), (0, 0, 0))
    image = Image.new("RGB", PAGE_PX, paper)
    draw = ImageDraw.Draw(image)
    y, used = MARGIN_PX, []
    while paragraphs:
        lines = wrap(paragraphs[0], font, PAGE_PX[0] - 2 * MARGIN_PX)
        if y + len(lines) * LINE_PX > PAGE_PX[1] - MARGIN_PX:
            break
        for line in lines:
            draw.text((MARGIN_PX, y), line, font=font, fill=ink)
            y += LINE_PX
        y += PARAGRAPH_GAP_PX
        used.append(paragraphs.pop(0))
    if photo:
        image = image.rotate(1.0, expand=False, fillcolor=(180, 180, 180), resample=Image.BICUBIC)
        image = image.filter(ImageFilter.GaussianBlur(0.8))
        buf = io.BytesIO()
        image.save(buf, "JPEG", quality=80)
        image = Image.open(io.BytesIO(buf.getvalue()))
    return image, "\n".join(used)


def normalised(text: str) -> str:
    return re.sub(r"\s+", "", unicodedata.normalize("NFKC", text))


def levenshtein(a: str, b: str) -> int:
    previous = list(range(len(b) + 1))
    for i, ca in enumerate(a, start=1):
        current = [i]
        for j, cb in enumerate(b, start=1):
            current.append(min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (ca != cb)))
        previous = current
    return previous[-1]


def run(pages_zh: int, pages_en: int) -> tuple[list[PageResult], float]:
    from ingest import ocr

    font = cjk_font(FONT_PX)
    start = time.perf_counter()
    ocr.ocr_engine()
    build_s = time.perf_counter() - start
    warm, _ = render_page(["预热 warm-up"], font, photo=False)
    ocr.ocr_image(warm)
    results = []
    for condition in ("scan", "photo"):
        # The texts repeat as often as needed, so every page is a full page.
        for language, source, n in (("中文", chinese_paragraphs() * pages_zh, pages_zh), ("English", ENGLISH.splitlines() * 4 * pages_en, pages_en)):
            for k in range(n):
                image, truth = render_page(source, font, photo=condition == "photo")
                if not truth:
                    break
                start, cpu_start = time.perf_counter(), time.process_time()
                page = ocr.ocr_image(image)
                seconds, cpu_seconds = time.perf_counter() - start, time.process_time() - cpu_start
                reference, read = normalised(truth), normalised(page.text)
                edits = levenshtein(reference, read)
                results.append(PageResult(condition, language, len(reference), edits, seconds, cpu_seconds, len(page.low_confidence)))
                log(f"{condition} {language} page {k + 1}: {len(reference)} chars, {seconds:.1f} s, accuracy {1 - edits / len(reference):.3f}")
    return results, build_s


def table(results: list[PageResult], build_s: float) -> str:
    rows = ["| condition | text | pages | characters | s/page | pages/s | CPU s/page | character accuracy (1 − CER) | low-confidence lines |",
            "|---|---|---|---|---|---|---|---|---|"]
    groups: dict[tuple[str, str], list[PageResult]] = {}
    for r in results:
        groups.setdefault((r.condition, r.language), []).append(r)
    for (condition, language), rs in groups.items():
        chars, edits, seconds = sum(r.chars for r in rs), sum(r.edits for r in rs), sum(r.seconds for r in rs)
        cpu = sum(r.cpu_seconds for r in rs)
        rows.append(f"| {condition} | {language} | {len(rs)} | {chars} | {seconds / len(rs):.2f} | {len(rs) / seconds:.2f} | {cpu / len(rs):.2f} | "
                    f"{1 - edits / chars:.3f} | {sum(r.low_confidence for r in rs)} |")
    rows.append("")
    rows.append(f"A4 pages at 150 dpi, {FONT_PX} px Noto Sans CJK SC; engine built in {build_s:.1f} s (once per process).")
    return "\n".join(rows)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pages", type=int, default=4, help="Chinese pages per condition (English: half as many, at least 1)")
    args = parser.parse_args(argv)
    busy_before, cpu_before, start = machine_busy_seconds(), time.process_time(), time.perf_counter()
    results, build_s = run(args.pages, max(1, args.pages // 2))
    print(table(results, build_s))
    print(machine_note(time.perf_counter() - start, busy_before, cpu_before))


if __name__ == "__main__":
    main()
