"""Streaming exports: Excel (openpyxl write-only) and CSV; memory stays flat whatever
the size.

Excel rows go straight to a temporary file; the response streams the file and removes
it.  Dates are real Excel dates shown dd/mm/yyyy.  CSV is UTF-8 with a BOM (so Excel
reads Vietnamese), dates dd/mm/yyyy HH:MM Vietnam time, streamed as it is written.
Coded values show their labels in both; text a spreadsheet would run as a formula is
kept as text.
"""
from __future__ import annotations

import csv
import datetime as dt
import enum
import io
import os
import tempfile
from collections.abc import Iterable, Iterator, Sequence
from typing import Any
from urllib.parse import quote

from flask import Response, send_file, stream_with_context
from openpyxl import Workbook
from openpyxl.cell import WriteOnlyCell
from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE
from openpyxl.styles import Alignment, Font
from openpyxl.worksheet.page import PageMargins
from openpyxl.worksheet.properties import PageSetupProperties
from openpyxl.worksheet.worksheet import Worksheet

from app.labels import display
from app.timeutil import to_local


class Money(int):
    """An amount in đồng: a number in the workbook (it sums), shown "4.000 đ" (the format
    carries Vietnamese's separators, whatever the reader's locale)."""


MONEY_FORMAT = '[$-42A]#,##0" đ"'
DATE_FORMAT = "DD/MM/YYYY"
DATETIME_FORMAT = "DD/MM/YYYY HH:MM"
XLSX_MIMETYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


def _cell(ws, value: Any, bold: bool = False) -> WriteOnlyCell:
    if isinstance(value, Money):
        cell = WriteOnlyCell(ws, value=int(value))
        cell.number_format = MONEY_FORMAT
    elif isinstance(value, dt.datetime):
        value = to_local(value).replace(tzinfo=None)  # stored UTC, shown in Vietnam time
        cell = WriteOnlyCell(ws, value=value)
        cell.number_format = DATETIME_FORMAT
    elif isinstance(value, dt.date):
        cell = WriteOnlyCell(ws, value=value)
        cell.number_format = DATE_FORMAT
    elif isinstance(value, (enum.Enum, bool)):
        cell = WriteOnlyCell(ws, value=display(value))
    elif isinstance(value, str):
        value = _xml_text(value)
        cell = _text_cell(ws, value) if value.startswith(FORMULA_STARTS) else \
            WriteOnlyCell(ws, value=value)
    else:
        cell = WriteOnlyCell(ws, value=value if value is None or isinstance(
            value, (int, float, str, bool)) else str(value))
    if bold:
        cell.font = Font(bold=True)
    return cell


_PLAIN = (int, float, type(None))
#: A cell starting with one of these is a formula to Excel and LibreOffice (=HYPERLINK…).
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def _text_cell(ws, value: str) -> WriteOnlyCell:
    """Text that a spreadsheet shows, never runs (a citizen named =HYPERLINK(...))."""
    cell = WriteOnlyCell(ws, value=value)
    cell.data_type = "s"
    return cell


def _xml_text(text: str) -> str:
    """A control character (stored before the door refused them) is dropped: XML cannot
    carry it, and one such cell made the whole workbook a 500."""
    return ILLEGAL_CHARACTERS_RE.sub("", text) if ILLEGAL_CHARACTERS_RE.search(text) else text


def _value(ws, value: Any) -> Any:
    """Plain values go in as they are (fast path); dates, enums and text that looks like a
    formula need a cell."""
    if isinstance(value, str) and not isinstance(value, enum.Enum):  # str-enums are codes
        value = _xml_text(value)
        return _text_cell(ws, value) if value.startswith(FORMULA_STARTS) else value
    return value if isinstance(value, _PLAIN) and not isinstance(value, bool | Money) else \
        _cell(ws, value)


def write_xlsx(
    path: str,
    title: str,
    headers: Sequence[str],
    rows: Iterable[Sequence[Any]],
    cover: Sequence[tuple[str, Any]] = (),
    widths: Sequence[int] | None = None,
) -> int:
    """Write a workbook: optional cover block (label, value), a header row, the rows —
    ready to print (``_print_ready``)."""
    wb = Workbook(write_only=True)
    ws = wb.create_sheet(title=title[:31])
    _print_ready(ws, header_row=len(cover) + 3 if cover else 1)
    for index, width in enumerate(widths or [], start=1):
        ws.column_dimensions[_column_letter(index)].width = width
    if cover:
        heading = WriteOnlyCell(ws, value=title)
        heading.font = Font(bold=True, size=14)
        ws.append([heading])
        for label, value in cover:
            ws.append([_cell(ws, label, bold=True), _cell(ws, value)])
        ws.append([])
    header_cells = []
    for text in headers:
        cell = _cell(ws, text, bold=True)
        cell.alignment = Alignment(wrap_text=True, vertical="center")
        header_cells.append(cell)
    ws.append(header_cells)
    count = 0
    for row in rows:
        ws.append([_value(ws, value) for value in row])
        count += 1
    wb.save(path)
    return count


def _print_ready(ws, header_row: int) -> None:
    """Landscape A4, every column across the page's width, the header row repeated on
    every page and frozen on screen, grid lines printed (a register is a ruled book)."""
    ws.page_setup.orientation = Worksheet.ORIENTATION_LANDSCAPE
    ws.page_setup.paperSize = Worksheet.PAPERSIZE_A4
    ws.page_setup.fitToWidth, ws.page_setup.fitToHeight = 1, 0
    ws.sheet_properties.pageSetUpPr = PageSetupProperties(fitToPage=True)
    ws.print_options.gridLines = True
    ws.page_margins = PageMargins(left=0.4, right=0.4, top=0.5, bottom=0.5)
    ws.print_title_rows = f"{header_row}:{header_row}"
    ws.freeze_panes = f"A{header_row + 1}"


def _column_letter(index: int) -> str:
    from openpyxl.utils import get_column_letter

    return get_column_letter(index)


def xlsx_response(filename: str, title: str, headers: Sequence[str],
                  rows: Iterable[Sequence[Any]], cover: Sequence[tuple[str, Any]] = (),
                  widths: Sequence[int] | None = None) -> Response:
    fd, path = tempfile.mkstemp(suffix=".xlsx")
    os.close(fd)
    try:
        write_xlsx(path, title, headers, rows, cover, widths)
        handle = open(path, "rb")
    finally:
        os.unlink(path)  # the open handle keeps the data until the response closes it
    return send_file(handle, mimetype=XLSX_MIMETYPE, as_attachment=True,
                     download_name=filename, max_age=0)


def text_value(value: Any) -> str:
    """A value as a person reads it in a CSV cell (what ``display`` shows on a page, and
    no cell that a spreadsheet would take for a formula)."""
    if isinstance(value, str) and not isinstance(value, enum.Enum):
        return "'" + value if value.startswith(FORMULA_STARTS) else value
    return str(display(value))


def csv_chunks(headers: Sequence[str], rows: Iterable[Sequence[Any]],
               every: int = 500) -> Iterator[str]:
    """The BOM, the header row, then the rows in chunks of ``every`` lines."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow([str(h) for h in headers])
    yield "\ufeff" + buffer.getvalue()
    buffer.seek(0)
    buffer.truncate()
    for count, row in enumerate(rows, start=1):
        writer.writerow([text_value(value) for value in row])
        if count % every == 0:
            yield buffer.getvalue()
            buffer.seek(0)
            buffer.truncate()
    yield buffer.getvalue()


def attachment(filename: str) -> dict[str, str]:
    return {"Content-Disposition": f"attachment; filename*=UTF-8''{quote(filename)}",
            "Cache-Control": "no-store"}


def csv_response(filename: str, headers: Sequence[str],
                 rows: Iterable[Sequence[Any]]) -> Response:
    return Response(stream_with_context(csv_chunks(headers, rows)),
                    content_type="text/csv; charset=utf-8", headers=attachment(filename))
