"""PowerPoint (.pptx, python-pptx) and Excel (.xlsx, openpyxl) loaders.

Both are ZIP containers: ``ingest.archives.check_archive`` refuses an archive bomb before either library
decompresses anything, as for .docx.

- A presentation is one page per slide (``paged=True``, so a citation says "第 2 页" for slide 2): the
  slide title as a ``#`` heading, then the text of its shapes in reading order (top to bottom, left to
  right; groups opened), tables as ``a | b`` rows, and the speaker notes after a "备注 (notes)：" line.
  Footer, date and slide-number placeholders are left out: they repeat on every slide and say nothing.
  Slides are laid out by their author, so they are not cleaned as PDF text (no line re-joining, no
  running-header removal: ``pdf_layout=False``).
- A workbook is one section per visible sheet, the sheet name as a ``#`` heading. The header row is the
  first row with two or more distinct values (a title row above it, often one merged cell, becomes a
  line of its own); every data row below it becomes one record that repeats the header names,
  "资产编号: ZW-0417；设备名称: 笔记本电脑", so a chunk of rows, or one cited row, reads alone (see
  ingest.tables). A merged range gives its top-left value to every cell it covers (a 部门 merged over
  three rows belongs to each of them); empty rows and columns are skipped. Formulas give the value Excel
  last saved (``data_only``). The workbook is opened in openpyxl's normal mode, not ``read_only``: only
  normal mode reads merged ranges. It holds every cell in memory (some hundred bytes each), so sheets
  whose XML unpacks to more than ``MAX_SHEET_XML_BYTES`` are refused before openpyxl reads them: a
  workbook that size is a database export, better ingested as CSV.
"""

from __future__ import annotations

import io
import zipfile
from collections.abc import Iterator
from typing import Any

from core.errors import LoadError
from ingest.archives import check_archive
from ingest.loaded import LoadedDocument, stem
from ingest.tables import cell_row, cell_text, record_row

PPTX_MIME = "application/vnd.openxmlformats-officedocument.presentationml.presentation"
XLSX_MIME = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
NOTES_LINE = "备注 (notes)："
MAX_SHEET_XML_BYTES = 64 * 1024 * 1024
# What a broken package makes python-pptx / openpyxl raise (malformed XML is a SyntaxError subclass).
_BROKEN = (zipfile.BadZipFile, KeyError, ValueError, TypeError, AttributeError, IndexError, SyntaxError, OSError)


# -- PowerPoint -------------------------------------------------------------------------------------
def load_pptx(data: bytes, source: str) -> LoadedDocument:
    from pptx import Presentation
    from pptx.exc import PackageNotFoundError


    check_archive(data, source)
    try:
        deck = Presentation(io.BytesIO(data))
        pages = [_slide_text(slide, number) for number, slide in enumerate(deck.slides, start=1)]  # parts parse lazily
    except (PackageNotFoundError, *_BROKEN) as exc:
        raise LoadError(source, f"PPTX 文件损坏 (corrupt PPTX: {type(exc).__name__}: {exc})", "请用 PowerPoint/WPS 另存为 .pptx 再导入")
    if not any(p.strip() for p in pages):
        raise LoadError(source, "演示文稿中没有文字 (no text on any slide)", "只有图片的幻灯片请先做 OCR 或导出为 PDF")
    title = (deck.core_properties.title or "").strip()
    return LoadedDocument(source, title or stem(source), PPTX_MIME, pages, paged=True, pdf_layout=False,
                          metadata={"slides": len(pages)})


def _slide_text(slide: Any, number: int) -> str:
    """One slide as Markdown-flavoured text. An untitled slide still gets a heading ("第 3 张幻灯片"), so
    its chunks do not inherit the previous slide's title as their heading path."""
    title_shape = slide.shapes.title
    title = cell_text(title_shape.text_frame.text) if title_shape is not None and title_shape.has_text_frame else ""
    lines = ["# " + (title or f"第 {number} 张幻灯片")]
    for shape in _reading_order(slide.shapes):
        if title_shape is not None and shape.shape_id == title_shape.shape_id:
            continue
        lines += _shape_lines(shape)
    if slide.has_notes_slide:
        notes = slide.notes_slide.notes_text_frame
        note_lines = [p.strip() for p in (notes.text if notes is not None else "").splitlines() if p.strip()]
        if note_lines:
            lines += [NOTES_LINE, *note_lines]
    if not title and len(lines) == 1:
        return ""  # an empty slide (a picture, a divider) is a page without text, not a lone heading
    return "\n".join(lines)


def _reading_order(shapes: Any) -> list[Any]:
    """Shapes top to bottom, then left to right (their stored order is z-order, not reading order)."""
    return sorted(shapes, key=lambda s: (s.top or 0, s.left or 0))


def _shape_lines(shape: Any) -> list[str]:
    from pptx.enum.shapes import MSO_SHAPE_TYPE, PP_PLACEHOLDER

    if shape.is_placeholder and shape.placeholder_format.type in (PP_PLACEHOLDER.FOOTER, PP_PLACEHOLDER.DATE, PP_PLACEHOLDER.SLIDE_NUMBER):
        return []
    if shape.shape_type == MSO_SHAPE_TYPE.GROUP:
        return [line for inner in _reading_order(shape.shapes) for line in _shape_lines(inner)]
    if getattr(shape, "has_table", False) and shape.has_table:
        return _pptx_table_rows(shape.table)
    if getattr(shape, "has_text_frame", False) and shape.has_text_frame:
        return [cell_text(p.text) for p in shape.text_frame.paragraphs if cell_text(p.text)]
    return []


def _pptx_table_rows(table: Any) -> list[str]:
    """Rows as ``a | b`` lines; a merged cell's text fills every cell it spans (as python-docx does)."""
    grid = [[cell_text(cell.text) for cell in row.cells] for row in table.rows]
    for r, row in enumerate(table.rows):
        for c, cell in enumerate(row.cells):
            if cell.is_merge_origin:
                for dr in range(cell.span_height):
                    for dc in range(cell.span_width):
                        if r + dr < len(grid) and c + dc < len(grid[r + dr]):
                            grid[r + dr][c + dc] = grid[r][c]
    return [line for line in (cell_row(cells) for cells in grid) if line]


# -- Excel ------------------------------------------------------------------------------------------
def load_xlsx(data: bytes, source: str) -> LoadedDocument:
    import openpyxl
    from openpyxl.utils.exceptions import InvalidFileException


    check_archive(data, source)
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        sheet_bytes = sum(i.file_size for i in archive.infolist() if i.filename.startswith("xl/worksheets/"))
    if sheet_bytes > MAX_SHEET_XML_BYTES:
        raise LoadError(source, f"表格太大：工作表解压后 {sheet_bytes / 1024 / 1024:.0f} MB，上限 {MAX_SHEET_XML_BYTES // 1024 // 1024} MB "
                                f"(workbook too large: {sheet_bytes / 1024 / 1024:.0f} MB of sheets)", "请拆分工作簿，或导出为 CSV 再导入")
    try:
        workbook = openpyxl.load_workbook(io.BytesIO(data), read_only=False, data_only=True)
    except (InvalidFileException, *_BROKEN) as exc:
        raise LoadError(source, f"XLSX 文件损坏 (corrupt XLSX: {type(exc).__name__}: {exc})", "请用 Excel/WPS 另存为 .xlsx 再导入")
    try:
        sections = []
        for sheet in workbook.worksheets:
            if sheet.sheet_state != "visible":
                continue  # hidden sheets hold lookups and scratch work, not what the team reads
            lines = list(_sheet_lines(sheet))
            if lines:
                sections.append("\n".join(["# " + sheet.title, *lines]))
        title = (workbook.properties.title or "").strip() if workbook.properties else ""
    finally:
        workbook.close()
    if not sections:
        raise LoadError(source, "表格中没有数据 (no data in any sheet)")
    return LoadedDocument(source, title or stem(source), XLSX_MIME, ["\n\n".join(sections)],
                          metadata={"sheets": len(sections)})


def _sheet_values(sheet: Any) -> list[list[Any]]:
    """The sheet's values, each merged range's top-left value copied into every cell it covers."""
    rows = [list(r) for r in sheet.iter_rows(values_only=True)]
    for merged in sheet.merged_cells.ranges:
        top_left = rows[merged.min_row - 1][merged.min_col - 1] if merged.min_row <= len(rows) else None
        for r in range(merged.min_row - 1, min(merged.max_row, len(rows))):
            row = rows[r]
            row.extend([None] * (merged.max_col - len(row)))
            for c in range(merged.min_col - 1, merged.max_col):
                row[c] = top_left
    return rows


def _sheet_lines(sheet: Any) -> Iterator[str]:
    header: list[str] | None = None
    for values in _sheet_values(sheet):
        texts = [cell_text(v) for v in values]
        filled = [t for t in texts if t]
        if not filled:
            continue  # an empty row
        if header is None:
            if len(set(filled)) >= 2 or _single_column(sheet):
                header = texts
            else:
                yield filled[0]  # a title or note above the table (often one merged cell)
            continue
        if len(filled) > 1 and len(set(filled)) == 1:
            yield filled[0]  # a section banner across the table: one merged value in every column
            continue
        line = record_row(header, values)
        if line:
            yield line


def _single_column(sheet: Any) -> bool:
    return (sheet.max_column or 1) <= 1
