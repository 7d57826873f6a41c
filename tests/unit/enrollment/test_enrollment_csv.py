"""Reading staff CSVs as HR offices export them."""

import pytest

from services.enrollment.staff_csv import parse_staff_csv
from shared.errors import DomainError

GOOD = "198503152010121002"
GOOD_F = "199001012015032001"


def lines(*rows: str) -> str:
    return "\n".join(rows) + "\n"


def test_reads_english_headers():
    parsed = parse_staff_csv(lines(
        "nip,name,unit,position_type,rank_group,supervisor_nip",
        f"{GOOD},Budi Santoso,Bappeda,structural,IV,",
        f"{GOOD_F},Sri Wahyuni,Bappeda,functional,III,{GOOD}",
    ))
    assert parsed.errors == []
    assert [(line, m.name, m.supervisor_nip, m.sex) for line, m in parsed.rows] == [
        (2, "Budi Santoso", None, "M"), (3, "Sri Wahyuni", GOOD, "F")]


def test_reads_indonesian_headers_semicolons_and_grades():
    parsed = parse_staff_csv(lines(
        "\ufeffNIP;Nama;Unit Kerja;Jenis Jabatan;Golongan;NIP Atasan",
        f"{GOOD};Budi Santoso;Dinas Pendidikan;Struktural;III/d;",
        f"{GOOD_F};Sri Wahyuni;Dinas Pendidikan;Fungsional;III/a;{GOOD}",
    ))
    assert parsed.errors == []
    assert [(m.unit, m.position_type, m.rank_group) for _, m in parsed.rows] == [
        ("Dinas Pendidikan", "structural", "III"), ("Dinas Pendidikan", "functional", "III")]


def test_reports_each_bad_row_with_line_field_and_reason_and_keeps_the_good_ones():
    parsed = parse_staff_csv(lines(
        "nip,nama,unit_kerja,jenis_jabatan,golongan,nip_atasan",
        f"{GOOD},Budi,Bappeda,umum,II/b,",
        "198702292010121001,Feb Bukan Kabisat,Bappeda,umum,II,",
        "198503152010123001,Jenis Kelamin Salah,Bappeda,umum,II,",
        "",
        f"{GOOD_F},,Bappeda,umum,II,",
        f"{GOOD_F},Sri,Bappeda,direktur,II,",
        f"{GOOD_F},Sri,Bappeda,umum,V,",
        f"{GOOD_F},Sri,Bappeda,umum,II,123",
        f"{GOOD},Budi Lagi,Bappeda,umum,II,",
        f"{GOOD_F},Sri,Bappeda,umum,II,",
    ))
    assert [(line, m.nip) for line, m in parsed.rows] == [(2, GOOD), (11, GOOD_F)]
    assert [(e.line, e.field) for e in parsed.errors] == [
        (3, "nip"), (4, "nip"), (6, "name"), (7, "position_type"), (8, "rank_group"),
        (9, "supervisor_nip"), (10, "nip")]
    assert "real birth date" in parsed.errors[0].reason
    assert "digit 15" in parsed.errors[1].reason
    assert parsed.errors[-1].reason == "duplicate of line 2"


def test_counts_lines_of_quoted_multi_line_cells():
    parsed = parse_staff_csv(lines(
        "nip,name,unit,position_type,rank_group",
        f'{GOOD},"Budi\nSantoso",Bappeda,general,I',
        "123,Salah,Bappeda,general,I",
    ))
    assert [(e.line, e.field) for e in parsed.errors] == [(4, "nip")]


def test_a_row_with_extra_cells_is_rejected():
    parsed = parse_staff_csv(lines("nip,name,unit,position_type,rank_group",
                                   f"{GOOD},Budi,Bappeda,general,I,surplus"))
    assert [(e.line, e.field) for e in parsed.errors] == [(2, "row")]


@pytest.mark.parametrize("text,reason", [
    ("", "is empty"),
    ("nip,name,unit\n", "missing column(s) position_type, rank_group"),
    ("nip,nama,name,unit,position_type,rank_group\n", "given twice: name"),
])
def test_an_unusable_header_rejects_the_file(text, reason):
    with pytest.raises(DomainError) as err:
        parse_staff_csv(text)
    assert reason in err.value.reason


def test_a_cell_longer_than_the_csv_limit_is_that_rows_error_and_the_rest_is_read():
    parsed = parse_staff_csv(lines(
        "nip,name,unit,position_type,rank_group",
        f"{GOOD},{'x' * 200_000},Bappeda,structural,IV",
        f"{GOOD_F},Sri Wahyuni,Bappeda,functional,III",
    ))
    assert [(e.line, e.field) for e in parsed.errors] == [(2, "row")]
    assert "field limit" in parsed.errors[0].reason
    assert [m.name for _, m in parsed.rows] == ["Sri Wahyuni"]


def test_a_name_longer_than_the_field_allows_is_a_row_error():
    parsed = parse_staff_csv(lines(
        "nip,name,unit,position_type,rank_group",
        f"{GOOD},{'x' * 5_000},Bappeda,structural,IV",
    ))
    assert [(e.line, e.field) for e in parsed.errors] == [(2, "name")] and parsed.rows == []
