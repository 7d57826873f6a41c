"""Reading a staff register CSV as city HR offices export it: pure, no I/O.

Headers may be English or Indonesian (`nama`, `unit_kerja`, `jenis_jabatan`, `golongan`,
`nip_atasan`); spreadsheets exported with an Indonesian locale use `;` as the delimiter.
Every bad row is reported with its line number, field and reason; good rows go on.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass

from shared.errors import DomainError

from .domain import StaffMember

MAX_ROWS = 20_000

COLUMNS = ("nip", "name", "unit", "position_type", "rank_group", "supervisor_nip")
REQUIRED = ("nip", "name", "unit", "position_type", "rank_group")
_ALIASES = {
    "nip": "nip", "nip_pegawai": "nip",
    "name": "name", "nama": "name", "nama_lengkap": "name", "nama_pegawai": "name",
    "unit": "unit", "unit_kerja": "unit", "work_unit": "unit", "opd": "unit",
    "position_type": "position_type", "jenis_jabatan": "position_type",
    "rank_group": "rank_group", "golongan": "rank_group", "gol": "rank_group",
    "golongan_ruang": "rank_group",
    "supervisor_nip": "supervisor_nip", "nip_atasan": "supervisor_nip", "atasan": "supervisor_nip",
    "nip_atasan_langsung": "supervisor_nip",
}


@dataclass(frozen=True)
class RowError:
    line: int
    field: str
    reason: str


@dataclass(frozen=True)
class ParsedCsv:
    rows: list[tuple[int, StaffMember]]  # (line number, member)
    errors: list[RowError]


def _canonical(header: str) -> str | None:
    key = "_".join(header.strip().lstrip("\ufeff").lower().replace("-", " ").split())
    return _ALIASES.get(key)


def parse_staff_csv(text: str) -> ParsedCsv:
    """Parse the whole file; a file without the needed columns raises DomainError('file')."""
    lines = text.lstrip("\ufeff").splitlines()
    if not lines or not lines[0].strip():
        raise DomainError("file", "is empty: expected a header row " + ",".join(COLUMNS))
    delimiter = ";" if lines[0].count(";") > lines[0].count(",") else ","
    reader = csv.reader(io.StringIO("\n".join(lines)), delimiter=delimiter)
    columns = _header(next(reader))
    rows: list[tuple[int, StaffMember]] = []
    errors: list[RowError] = []
    first_line: dict[str, int] = {}
    while True:
        try:
            cells = next(reader)
        except StopIteration:
            break
        except csv.Error as exc:  # a cell past the csv module's limit: that row's error only
            if len(rows) + len(errors) >= MAX_ROWS:
                raise DomainError("file", f"more than {MAX_ROWS} rows: split the file") from None
            errors.append(RowError(reader.line_num, "row", f"unreadable: {exc}"))
            continue
        line = reader.line_num  # physical line, right even after a quoted multi-line cell
        if not any(cell.strip() for cell in cells):
            continue  # blank lines at the end of exported sheets
        if len(rows) + len(errors) >= MAX_ROWS:
            raise DomainError("file", f"more than {MAX_ROWS} rows: split the file")
        if len(cells) > len(columns) and any(c.strip() for c in cells[len(columns):]):
            errors.append(RowError(line, "row", f"{len(cells)} cells but {len(columns)} columns"))
            continue
        values = {name: (cells[i] if i < len(cells) else "") for i, name in enumerate(columns) if name}
        try:
            member = StaffMember.create(**{k: values.get(k, "") for k in COLUMNS})
        except DomainError as exc:
            errors.append(RowError(line, exc.field, exc.reason))
            continue
        if member.nip in first_line:
            errors.append(RowError(line, "nip", f"duplicate of line {first_line[member.nip]}"))
            continue
        first_line[member.nip] = line
        rows.append((line, member))
    return ParsedCsv(rows, errors)


def _header(cells: list[str]) -> list[str | None]:
    columns = [_canonical(cell) for cell in cells]
    missing = [name for name in REQUIRED if name not in columns]
    if missing:
        raise DomainError("header", f"missing column(s) {', '.join(missing)}; expected " + ",".join(COLUMNS))
    repeated = {c for c in columns if c and columns.count(c) > 1}
    if repeated:
        raise DomainError("header", f"column(s) given twice: {', '.join(sorted(repeated))}")
    return columns
