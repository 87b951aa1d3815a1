"""OCR (ingest.ocr): photos of text and scanned PDF pages answered with their source and page, a PDF that
mixes text and scanned pages keeping both, low-confidence lines reported, uploads of images, and the
clear report without the ``ocr`` extra.

Everything is real: the images are rendered here with Pillow and a CJK font (Debian fonts-noto-cjk,
installed by ``make browser``), PDFs are written by Pillow (image-only) and reportlab (a text layer),
rapidocr-onnxruntime reads them, and questions go through the extractive ``ask`` path. The only
stand-in is the missing-extra simulation, which makes ``ingest.ocr._import_rapidocr`` raise ImportError
exactly as a missing package would.
"""

from __future__ import annotations

import glob
import io
import subprocess
import threading
from pathlib import Path

import pytest

from core.errors import LoadError
from ingest import ocr
from ingest.clean import clean_pages
from ingest.documents import ingest_upload
from ingest.kb import KnowledgeBase
from ingest.loaders import load_bytes
from ingest.ocr import OcrLine, lines_to_text, ocr_progress
from ingest.pipeline import ingest_paths
from llm.answer import ask

KB = "scans"
PHOTO_TEXT = ("员工入职满一年后可享受十天带薪年假，", "未休年假可以顺延到次年三月底。")
BLURRED_LINE = "会议室预订须提前两天在系统中登记。"
SCANNED_PAGES = ("第一章 会议室管理：会议室须提前两天在系统中预订。", "第二章 车辆管理：公务用车须在出发前一天下午五点前提交申请。")
MIXED_TEXT_PAGE = "门禁卡遗失后须在二十四小时内到行政部挂失补办。"
MIXED_SCANNED_PAGE = "打印机卡纸时请联系信息部，分机号码为8806。"


# -- inputs, rendered here --------------------------------------------------------------------------
def _find_cjk_font() -> str | None:
    found = sorted(glob.glob("/usr/share/fonts/opentype/noto/NotoSansCJK*-Regular.ttc"))
    if found:
        return found[0]
    try:
        listed = subprocess.run(["fc-list", ":lang=zh", "file"], capture_output=True, text=True, timeout=30).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    files = sorted(line.split(":")[0] for line in listed.splitlines() if line.strip())
    return files[0] if files else None


@pytest.fixture(scope="module")
def font_path() -> str:
    path = _find_cjk_font()
    if path is None:
        pytest.skip("no CJK font to render test images (apt-get install fonts-noto-cjk, or `make browser`)")
    return path


@pytest.fixture(scope="module")
def engine_installed() -> None:
    pytest.importorskip("rapidocr_onnxruntime", reason="the ocr extra is not installed (pip install -e '.[ocr]'; `make setup` does)")


def sc_font(font_path: str, size: int = 30):
    """The collection's Simplified Chinese face (its first face is the Japanese one, whose glyphs for
    simplified characters such as 门 differ from what Chinese documents print)."""
    from PIL import ImageFont

    for index in range(5):
        try:
            font = ImageFont.truetype(font_path, size, index=index)
        except OSError:
            break
        if font.getname()[0].endswith(" SC"):
            return font
    return ImageFont.truetype(font_path, size)


def text_image(font_path: str, lines: list[str], size: tuple[int, int] = (900, 260)):
    """Dark text on white, 30 px characters, a line every 44 px."""
    from PIL import Image, ImageDraw

    font = sc_font(font_path)
    image = Image.new("RGB", size, "white")
    draw = ImageDraw.Draw(image)
    for i, line in enumerate(lines):
        draw.text((40, 40 + 44 * i), line, font=font, fill=(20, 20, 20))
    return image


def photo_of_notice(font_path: str) -> bytes:
    """A phone photo of a notice: off-white paper, slightly rotated, JPEG; a two-line paragraph wrapped
    mid-sentence, then one line too pixelated to read with confidence."""
    from PIL import Image, ImageDraw

    paper = Image.new("RGB", (900, 320), (246, 243, 236))
    font = sc_font(font_path)
    draw = ImageDraw.Draw(paper)
    draw.text((100, 40), PHOTO_TEXT[0], font=font, fill=(30, 30, 40))
    draw.text((40, 84), PHOTO_TEXT[1], font=font, fill=(30, 30, 40))
    line = Image.new("RGB", (900, 60), (246, 243, 236))
    ImageDraw.Draw(line).text((40, 8), BLURRED_LINE, font=font, fill=(90, 90, 90))
    paper.paste(line.resize((225, 15), Image.BILINEAR).resize((900, 60), Image.NEAREST), (0, 200))
    photo = paper.rotate(1.0, expand=True, fillcolor=(200, 200, 200), resample=Image.BICUBIC)
    out = io.BytesIO()
    photo.save(out, "JPEG", quality=90)
    return out.getvalue()


def scanned_pdf(font_path: str, pages: tuple[str, ...]) -> bytes:
    """An image-only PDF, as a scanner without OCR writes it (Pillow: one image per page, no text layer)."""
    images = [text_image(font_path, [text], size=(800, 600)) for text in pages]
    out = io.BytesIO()
    images[0].save(out, "PDF", save_all=True, append_images=images[1:], resolution=200)
    return out.getvalue()


def mixed_pdf(font_path: str) -> bytes:
    """Page 1 has a text layer (reportlab), page 2 is a scanned image with none."""
    from reportlab.lib.utils import ImageReader
    from reportlab.pdfbase import pdfmetrics
    from reportlab.pdfbase.cidfonts import UnicodeCIDFont
    from reportlab.pdfgen import canvas

    pdfmetrics.registerFont(UnicodeCIDFont("STSong-Light"))
    out = io.BytesIO()
    c = canvas.Canvas(out)
    c.setFont("STSong-Light", 12)
    c.drawString(72, 760, MIXED_TEXT_PAGE)
    c.showPage()
    c.drawImage(ImageReader(text_image(font_path, [MIXED_SCANNED_PAGE], size=(800, 200))), 36, 600, width=520, height=130)
    c.showPage()
    c.save()
    return out.getvalue()


# -- a knowledge base of scans ---------------------------------------------------------------------
@pytest.fixture(scope="module")
def scans_kb(tmp_path_factory, font_path, engine_installed):
    """A photo, a two-page scanned PDF and a mixed PDF, ingested once with OCR progress recorded."""
    from core.settings import load_settings

    root = tmp_path_factory.mktemp("ocr")
    folder = root / "扫描件"
    folder.mkdir()
    (folder / "年假通知.jpg").write_bytes(photo_of_notice(font_path))
    (folder / "扫描制度.pdf").write_bytes(scanned_pdf(font_path, SCANNED_PAGES))
    (folder / "混合手册.pdf").write_bytes(mixed_pdf(font_path))
    settings = load_settings(data_dir=root / "data")
    progress: list[tuple[str, int, int]] = []
    with ocr_progress(lambda source, page, pages: progress.append((Path(source).name, page, pages))):
        results = ingest_paths([folder], KB, settings)
    return settings, {Path(r.source).name: r for r in results}, progress


def cleaned_text(settings, source_name: str) -> str:
    with KnowledgeBase.open(KB, settings) as kb:
        doc = next(d for d in kb.catalog.list_documents() if d.source.endswith(source_name))
        return kb.catalog.document_text(doc.id)


def metadata(settings, source_name: str) -> dict:
    with KnowledgeBase.open(KB, settings) as kb:
        return next(d for d in kb.catalog.list_documents() if d.source.endswith(source_name)).metadata


def assert_quotes_are_the_text(settings, answer) -> None:
    for c in answer.citations:
        assert cleaned_text(settings, Path(c.source).name)[c.start : c.end] == c.quote


def test_every_scan_is_indexed_with_ocr_progress_per_page(scans_kb):
    _, results, progress = scans_kb
    assert {name: r.status for name, r in results.items()} == {
        "年假通知.jpg": "indexed", "扫描制度.pdf": "indexed", "混合手册.pdf": "indexed"}, results
    assert ("扫描制度.pdf", 1, 2) in progress and ("扫描制度.pdf", 2, 2) in progress
    assert ("混合手册.pdf", 1, 1) in progress, "only the scanned page of the mixed PDF is OCR'd"
    assert ("年假通知.jpg", 1, 1) in progress and len(progress) == 4, progress


def test_a_question_answered_only_by_a_photo_cites_the_image(scans_kb):
    settings, _, _ = scans_kb
    answer = ask("未休年假可以顺延到什么时候？", KB, settings)
    assert not answer.refused, answer.text
    top = answer.citations[0]
    assert top.source.endswith("年假通知.jpg") and top.page == 1
    assert "次年三月底" in top.quote and "次年三月底" in answer.text
    assert_quotes_are_the_text(settings, answer)


def test_photo_lines_are_joined_into_one_sentence(scans_kb):
    """The paragraph wrapped after "年假，" is one sentence again: joined without a space (CJK)."""
    settings, _, _ = scans_kb
    assert "".join(PHOTO_TEXT) in cleaned_text(settings, "年假通知.jpg")


def test_low_confidence_lines_are_counted_listed_and_reported(scans_kb):
    settings, results, _ = scans_kb
    meta = metadata(settings, "年假通知.jpg")
    assert meta["ocr_pages"] == [1]
    listed = meta["ocr_low_confidence"]
    assert meta["ocr_low_confidence_count"] == len(listed) >= 1, meta
    assert all(item["confidence"] < ocr.LOW_CONFIDENCE and item["page"] == 1 for item in listed)
    assert not any("年假" in item["text"] for item in listed), "the sharp lines are not doubted"
    reason = results["年假通知.jpg"].reason
    assert f"{len(listed)} 行识别置信度低于 0.8" in reason and "read by OCR" in reason, reason


def test_a_question_answered_only_on_page_2_of_a_scanned_pdf_cites_page_2(scans_kb):
    settings, _, _ = scans_kb
    answer = ask("公务用车最晚什么时候提交申请？", KB, settings)
    assert not answer.refused, answer.text
    top = answer.citations[0]
    assert top.source.endswith("扫描制度.pdf") and top.page == 2, answer.citations
    assert "下午五点" in top.quote
    assert_quotes_are_the_text(settings, answer)


def test_a_mixed_pdf_keeps_its_text_layer_and_ocrs_the_scanned_page(scans_kb):
    settings, results, _ = scans_kb
    assert metadata(settings, "混合手册.pdf")["ocr_pages"] == [2]
    assert results["混合手册.pdf"].reason.startswith("1 页由 OCR 识别")
    text_layer = ask("门禁卡遗失后多久内要挂失？", KB, settings)
    scanned = ask("打印机卡纸时联系哪个分机？", KB, settings)
    for answer, page, words in ((text_layer, 1, "二十四小时"), (scanned, 2, "8806")):
        assert not answer.refused, answer.text
        top = answer.citations[0]
        assert (Path(top.source).name, top.page) == ("混合手册.pdf", page) and words in top.quote, answer.citations
        assert_quotes_are_the_text(settings, answer)
    assert MIXED_TEXT_PAGE in cleaned_text(settings, "混合手册.pdf"), "page 1 is the text layer, verbatim"


# -- uploads ---------------------------------------------------------------------------------------
def test_an_uploaded_png_is_read_and_stored_as_png(settings, font_path, engine_installed):
    image = text_image(font_path, ["报销须在出差结束后十五个工作日内提交。"], size=(800, 120))
    data = io.BytesIO()
    image.save(data, "PNG")
    result = ingest_upload("up", "报销.png", data.getvalue(), settings)
    assert result.status == "indexed" and "OCR" in result.reason, result
    assert [p.suffix for p in (settings.data_dir / "uploads" / "up").iterdir() if p.is_file()] == [".png"]
    answer = ask("报销要在多少个工作日内提交？", "up", settings)
    assert answer.citations[0].source == "上传/报销.png" and "十五个工作日" in answer.citations[0].quote


def test_uploads_refuse_text_named_png_and_images_over_the_pixel_cap(settings):
    from PIL import Image

    text = ingest_upload("up", "截图.png", "这不是图片，只是文字。".encode(), settings)
    assert text.status == "failed" and "内容不是 PNG" in text.reason and "plain text" in text.reason
    bomb = io.BytesIO()
    Image.new("1", (8000, 8000), 1).save(bomb, "PNG")  # 64 MP declared in a few KB
    assert len(bomb.getvalue()) < 100_000
    result = ingest_upload("up", "大图.png", bomb.getvalue(), settings)
    assert result.status == "failed" and "图片过大" in result.reason and "decompression bomb" in result.reason
    assert not (settings.data_dir / "uploads" / "up").exists() or not any((settings.data_dir / "uploads" / "up").glob("*.png"))


# -- without the ocr extra -------------------------------------------------------------------------
@pytest.fixture
def without_ocr_extra(monkeypatch):
    """Simulates a machine without the ``ocr`` extra: the engine's import raises ImportError, as it does
    when rapidocr-onnxruntime is not installed. (A legitimate simulation of a missing optional package.)"""

    def missing() -> type:
        raise ImportError("No module named 'rapidocr_onnxruntime'")

    monkeypatch.setattr(ocr, "_import_rapidocr", missing)


def test_without_the_extra_an_image_is_refused_with_the_install_command(without_ocr_extra, font_path, settings, tmp_path):
    image = tmp_path / "通知.png"
    text_image(font_path, ["会议室须提前两天预订。"]).save(image)
    with pytest.raises(LoadError) as info:
        load_bytes(image.read_bytes(), "通知.png")
    assert info.value.reason == "需要 OCR 组件：pip install 'zhiwen[ocr]' (needs the ocr extra)"
    [result] = ingest_paths([image], "plain", settings)
    assert result.status == "failed" and "pip install 'zhiwen[ocr]'" in result.reason


def test_without_the_extra_a_mixed_pdf_keeps_its_text_pages_and_says_what_needs_ocr(without_ocr_extra, font_path, settings, tmp_path):
    mixed = tmp_path / "混合.pdf"
    mixed.write_bytes(mixed_pdf(font_path))
    scanned = tmp_path / "扫描.pdf"
    scanned.write_bytes(scanned_pdf(font_path, SCANNED_PAGES))
    results = {Path(r.source).name: r for r in ingest_paths([mixed, scanned], "plain", settings)}
    assert results["混合.pdf"].status == "indexed"
    assert "共 1 页需要 OCR 组件" in results["混合.pdf"].reason and "need the ocr extra" in results["混合.pdf"].reason
    with KnowledgeBase.open("plain", settings) as kb:
        doc = kb.catalog.document_by_source(str(mixed))
        assert doc.metadata["ocr_missing_pages"] == [2] and MIXED_TEXT_PAGE in kb.catalog.document_text(doc.id)
    assert results["扫描.pdf"].status == "failed"
    assert "扫描件" in results["扫描.pdf"].reason and "pip install 'zhiwen[ocr]'" in results["扫描.pdf"].reason


# -- the pieces ------------------------------------------------------------------------------------
def _line(text: str, x0: float, y0: float, x1: float, height: float = 30.0, confidence: float = 0.99) -> OcrLine:
    return OcrLine(text, confidence, x0, y0, x1, y0 + height)


def test_lines_join_without_spaces_for_cjk_with_one_for_latin_and_break_on_gaps():
    lines = [
        _line("出差结束后十五个工作日内提交报销单，", 40, 40, 860),
        _line("逾期不予报销。", 40, 84, 300),
        _line("Claims are filed within fifteen", 40, 200, 860),  # a blank line's gap above: a new paragraph
        _line("working days.", 40, 244, 300),
        _line("姓名", 40, 400, 120), _line("张三", 400, 402, 480),  # one row, two boxes
    ]
    assert lines_to_text(lines) == (
        "出差结束后十五个工作日内提交报销单，逾期不予报销。\n\nClaims are filed within fifteen working days.\n\n姓名 张三"
    )


def test_an_indented_line_or_a_short_finished_line_starts_a_paragraph():
    lines = [
        _line("第一段到此结束。", 40, 40, 300),
        _line("第二段首行缩进两个字，", 100, 84, 860),
        _line("第二段接着写完。", 40, 128, 400),
        _line("第三段从头开始。", 100, 172, 400),
    ]
    assert lines_to_text(lines).split("\n\n") == ["第一段到此结束。", "第二段首行缩进两个字，第二段接着写完。", "第三段从头开始。"]


def test_ocr_text_survives_cleaning_so_quotes_are_exact():
    page = lines_to_text([_line("会议室须提前两天预订，", 40, 40, 860), _line("取消须提前半天。", 40, 84, 300)])
    cleaned = clean_pages([page], pdf_layout=True)
    assert cleaned.text == "会议室须提前两天预订，取消须提前半天。" and cleaned.page_spans == [(0, len(cleaned.text), 1)]


def test_an_upside_down_page_is_read_turned_round(font_path, engine_installed):
    """The per-line angle classifier is off (it flipped upright lines); a page scanned upside down is
    recognised as doubtful, read again turned round, and the better reading kept."""
    image = text_image(font_path, ["报销须在出差结束后十五个工作日内提交。"], size=(800, 120)).rotate(180)
    assert "报销须在出差结束后十五个工作日内提交" in ocr.ocr_image(image).text


def test_the_engine_is_built_once_per_process_across_threads(engine_installed, monkeypatch):
    monkeypatch.setattr(ocr, "_engine", None)  # not built yet: four threads race to build it
    engines: list[object] = []
    threads = [threading.Thread(target=lambda: engines.append(ocr.ocr_engine())) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(engines) == 4 and all(e is engines[0] for e in engines) and ocr.ocr_engine() is engines[0]
