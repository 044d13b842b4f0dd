"""Reading lists as people make them: encodings, delimiters, quoted newlines, blank rows, XLSX, bad files."""

from __future__ import annotations

import io
import re
import zipfile

import pytest
from openpyxl import Workbook

from leads.imports import reading
from leads.imports.mapping import complete_mapping, guess_mapping, mapping_errors
from leads.imports.rows import build_row


def _read(data: bytes, name: str = "list.csv") -> tuple[reading.FileInfo, list[tuple[int, list[str]]]]:
    fileobj = io.BytesIO(data)
    info = reading.inspect(fileobj, name)
    return info, list(reading.data_rows(fileobj, info))


def xlsx_bytes(rows: list[list[object]]) -> bytes:
    workbook = Workbook()
    sheet = workbook.active
    for row in rows:
        sheet.append(row)
    out = io.BytesIO()
    workbook.save(out)
    return out.getvalue()


CHINESE = "姓名,手机,邮箱,公司\n王小明,138 0013 8000,wang@example.cn,上海某某科技\n"


@pytest.mark.parametrize(
    ("data", "encoding"),
    [
        (CHINESE.encode("utf-8"), "utf-8"),
        (b"\xef\xbb\xbf" + CHINESE.encode("utf-8"), "utf-8-sig"),
        (CHINESE.encode("gb18030"), "gb18030"),
    ],
    ids=["utf8", "utf8-bom", "gb18030"],
)
def test_encoding_is_detected_and_chinese_is_read_back(data: bytes, encoding: str) -> None:
    info, rows = _read(data)

    assert info.encoding == encoding
    assert info.headers == ["姓名", "手机", "邮箱", "公司"]
    assert rows == [(2, ["王小明", "138 0013 8000", "wang@example.cn", "上海某某科技"])]


def test_gbk_bytes_that_are_invalid_utf8_late_in_the_file_are_still_detected() -> None:
    # given a file whose first megabyte is ASCII and whose Chinese comes later (Excel's GBK export)
    data = ("name,company\n" + "ann,acme\n" * 150_000 + "李雷,北京公司\n").encode("gb18030")

    info, rows = _read(data)

    assert info.encoding == "gb18030"
    assert rows[-1] == (150_002, ["李雷", "北京公司"])


@pytest.mark.parametrize(
    ("delimiter", "text"), [(";", "name;phone\nAnn;13800138000\n"), ("\t", "name\tphone\nAnn\t13800138000\n")]
)
def test_semicolon_and_tab_are_sniffed(delimiter: str, text: str) -> None:
    info, rows = _read(text.encode())

    assert info.delimiter == delimiter
    assert rows == [(2, ["Ann", "13800138000"])]


def test_line_numbers_match_excel_rows_with_quoted_newlines_and_blank_lines() -> None:
    # given a note spanning two lines inside quotes, a blank line, and CRLF line ends
    data = b'name,note\r\n"Ann","first\r\nsecond"\r\n\r\nBob,ok\r\n,\r\nCid,x\r\n'

    _info, rows = _read(data)

    # then rows carry the row number Excel shows: a quoted newline stays in its row, blank rows count
    assert [line for line, _ in rows] == [2, 4, 6]
    assert rows[0][1] == ["Ann", "first\r\nsecond"]


def test_headers_with_stray_spaces_and_full_width_letters_are_cleaned() -> None:
    info, _rows = _read(" Ｅｍａｉｌ , 公司名称　 ,Email\nann@example.com,Acme,x@example.com\n".encode())

    assert info.headers == ["Email", "公司名称", "Email (2)"]
    assert guess_mapping(info.headers) == {"Email": "email", "公司名称": "company", "Email (2)": "attr:Email (2)"}


def test_xlsx_is_read_with_phone_numbers_as_text_and_blank_rows_counted() -> None:
    data = xlsx_bytes([["姓名", "手机"], ["王伟", 13800138000], [None, None], ["李娜", "139-0013-9000"]])

    info, rows = _read(data, "list.xlsx")

    assert info.kind == "xlsx"
    assert rows == [(2, ["王伟", "13800138000"]), (4, ["李娜", "139-0013-9000"])]


@pytest.mark.parametrize(
    ("data", "name", "message"),
    [
        (b"", "list.csv", "empty"),
        (b"\n\n  \n", "list.csv", "empty"),
        (b"name,phone\n", "list.csv", "no data rows"),
        (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "list.csv", "not a text"),
        (b"name,phone\nann,1\n", "list.pdf", ".csv or .xlsx"),
        (b"name,phone\nann,1\n", "list.xlsx", "not a valid .xlsx"),
        (b"PK\x03\x04garbage-not-a-zip", "list.xlsx", "not a valid .xlsx"),
        (bytes(range(128, 256)) * 40 + b"\x00", "list.csv", "not a text"),
    ],
    ids=[
        "empty",
        "blank-lines-only",
        "header-only",
        "binary",
        "wrong-extension",
        "csv-named-xlsx",
        "broken-zip",
        "nul",
    ],
)
def test_bad_files_are_refused_with_a_clear_reason(data: bytes, name: str, message: str) -> None:
    with pytest.raises(reading.ImportFileError, match=message):
        reading.inspect(io.BytesIO(data), name)


def test_chinese_and_english_headers_are_mapped() -> None:
    headers = [
        "名字",
        "联系电话",
        "电子邮件",
        "单位",
        "职务",
        "行业",
        "省份",
        "城市",
        "国家",
        "网站",
        "备注",
        "来源",
        "标签",
        "生日",
    ]

    mapping = guess_mapping(headers)

    assert mapping == {
        "名字": "name", "联系电话": "phone", "电子邮件": "email", "单位": "company", "职务": "job_title",
        "行业": "industry", "省份": "region", "城市": "city", "国家": "country", "网站": "website",
        "备注": "attr:notes", "来源": "source", "标签": "tags", "生日": "attr:生日",
    }  # fmt: skip
    english = guess_mapping(["Full Name", "Mobile", "E-mail", "Company Name", "Job Title", "Province"])
    assert english == {
        "Full Name": "name", "Mobile": "phone", "E-mail": "email", "Company Name": "company",
        "Job Title": "job_title", "Province": "region",
    }  # fmt: skip


def test_a_users_mapping_overrides_the_guess_without_duplicating_a_field() -> None:
    headers = ["Email", "Work email", "Name"]

    mapping = complete_mapping({"Work email": "email"}, headers)

    assert mapping == {"Email": "attr:Email", "Work email": "email", "Name": "name"}
    assert mapping_errors(mapping, headers) == []


@pytest.mark.parametrize(
    ("mapping", "message"),
    [
        ({"Nope": "email"}, "not a column"),
        ({"A": "salary"}, "not a lead field"),
        ({"A": "email", "B": "email"}, "both map to"),
        ({"A": "", "B": "attr:x"}, "at least one column"),
    ],
)
def test_bad_mappings_are_explained(mapping: dict[str, str], message: str) -> None:
    errors = mapping_errors(mapping, ["A", "B"])

    assert any(message in error for error in errors), errors


def test_the_fast_chinese_mobile_path_agrees_with_the_full_phone_parser() -> None:
    import random

    from django.core.exceptions import ValidationError

    from common.normalize import normalize_phone
    from leads.imports.rows import fast_phone

    def outcome(normalize, value: str) -> str:
        try:
            return normalize(value)
        except ValidationError:
            return "invalid"

    rng = random.Random(3)
    for prefix in range(100, 200):  # every 1xx prefix, valid and invalid ones
        for _ in range(20):
            number = f"{prefix}{rng.randrange(10**8):08d}"
            for written in (
                number,
                f"+86 {number}",
                f"(0086){number}",
                f"{number[:3]}-{number[3:7]}-{number[7:]}",
                number[:10],
            ):
                assert outcome(fast_phone, written) == outcome(normalize_phone, written), written


EMAIL_CASES = [
    "", "  ", " Ann@Example.COM ", "ａｎｎ@ｅｘａｍｐｌｅ.ｃｏｍ", "a@b", "a@localhost", "a@[127.0.0.1]", "a@[::1]",
    "a@[1.2.3.999]", "a@b..c", "a b@c.com", "x@-a.com", "x@a-.com", '"quoted"@x.com', "a@b.c", "a@@b.com",
    "@x.com", "a@", "名@x.com", "a@例子.测试", "a@xn--fsq.com", "tab\t@x.com", "x" * 330 + "@a.com",
    "a@" + "b" * 70 + ".com",
]  # fmt: skip


@pytest.mark.parametrize("value", EMAIL_CASES)
def test_the_import_e_mail_check_agrees_with_the_one_every_entry_point_uses(value: str) -> None:
    from django.core.exceptions import ValidationError

    from common.normalize import normalize_email, normalize_text
    from leads.imports.rows import clean_text, fast_email

    def outcome(normalize, value: str) -> str:
        try:
            return normalize(value)
        except ValidationError:
            return "invalid"

    assert outcome(fast_email, value) == outcome(normalize_email, value)
    assert clean_text(value) == normalize_text(value)


FULL_WIDTH_TEXT = [
    "Ｊｏｈｎ　Ｓｍｉｔｈ", "ＡＣＭＥ　Ｃｏｒｐ", "  上海　某某\u3000\u3000科技 ", "ＡＣＭＥ，Ｉｎｃ．", "ﾃｽﾄ ｶﾞｲｼｬ",
    "Ｏ’Ｂｒｉｅｎ\tＬｔｄ", "王\u00a0小明", "①号楼",
]  # fmt: skip
FULL_WIDTH_PHONES = [
    "１３８ ００１３ ８０００", "１３８００１３８０００", "＋８６ １３８－００１３－８０００", "（００８６）１３８００１３８０００",
    "（０２１）６２３４ ５６７８", "＋４４ ２０ ７９４６ ００００", "１２３４５",
]  # fmt: skip


@pytest.mark.parametrize("value", FULL_WIDTH_TEXT)
def test_the_import_folds_full_width_text_as_every_entry_point_does(value: str) -> None:
    from common.normalize import normalize_text
    from leads.imports.rows import RowBuilder

    builder = RowBuilder(["name", "company", "city"], {"name": "name", "company": "company", "city": "city"})
    row = builder(2, [value, value, value])

    folded = normalize_text(value)
    assert (row.data["name"], row.data["company"], row.data["city"]) == (folded, folded, folded)
    assert row.errors == []


@pytest.mark.parametrize("value", FULL_WIDTH_PHONES)
def test_the_import_reads_full_width_phone_digits_as_every_entry_point_does(value: str) -> None:
    from django.core.exceptions import ValidationError

    from common.normalize import normalize_phone
    from leads.imports.rows import RowBuilder

    row = RowBuilder(["phone"], {"phone": "phone"}, region="CN")(2, [value])

    try:
        expected = normalize_phone(value, region="CN")
    except ValidationError:
        assert "phone" not in row.data
        assert row.errors  # rejected by both
    else:
        assert row.data["phone"] == expected


def test_a_workbook_that_expands_too_much_is_refused_before_it_is_read(monkeypatch: pytest.MonkeyPatch) -> None:
    # A small upload whose shared strings unpack to gigabytes would exhaust memory inside openpyxl.
    rows: list[list[object]] = [["name"]]
    for _ in range(200):
        rows.append(["y" * 5000])
    data = xlsx_bytes(rows)
    monkeypatch.setattr(reading, "MAX_XLSX_UNCOMPRESSED", 100_000)

    with pytest.raises(reading.ImportFileError, match="expands to too much data"):
        _read(data, "list.xlsx")


def test_a_row_shorter_or_longer_than_the_header_keeps_every_cell_for_the_error_report() -> None:
    headers = ["姓名", "邮箱", "城市"]
    mapping = {"姓名": "name", "邮箱": "email", "城市": "city"}

    short = build_row(3, headers, ["张伟"], mapping)
    long = build_row(4, headers, ["李娜", " LI@Example.com ", "上海", "展会名单", " "], mapping)

    assert (short.raw, short.data, short.errors) == ({"姓名": "张伟", "邮箱": "", "城市": ""}, {"name": "张伟"}, [])
    assert long.raw == {"姓名": "李娜", "邮箱": " LI@Example.com ", "城市": "上海", "Column 4": "展会名单"}
    assert long.data == {"name": "李娜", "email": "li@example.com", "city": "上海"}


def test_an_extra_cell_does_not_overwrite_a_header_that_reads_like_its_label() -> None:
    row = build_row(2, ["name", "Column 3"], ["Ann", "kept", "extra"], {"name": "name", "Column 3": "attr:note"})

    assert row.raw == {"name": "Ann", "Column 3": "kept", "Column 3+": "extra"}
    assert row.attributes == {"note": "kept"}


# --- The worker's read of an accepted upload (StoredList) ---------------------------------------------


def _stored(data: bytes, name: str) -> reading.StoredList:
    fileobj = io.BytesIO(data)
    return reading.StoredList(fileobj, reading.inspect(fileobj, name))


def xlsx_unsized_bytes(rows: list[list[object]]) -> bytes:
    """A workbook without a declared size (openpyxl's write-only mode writes none)."""
    workbook = Workbook(write_only=True)
    sheet = workbook.create_sheet()
    for row in rows:
        sheet.append(row)
    out = io.BytesIO()
    workbook.save(out)
    return out.getvalue()


LIST: list[list[object]] = [
    [None],
    ["姓名", "手机"],
    ["王伟", 13800138000],
    [None, None],
    ["李娜", "139-0013-9000"],
    ["张三", 1],
]


@pytest.mark.parametrize(
    ("data", "name", "count"),
    [
        # The declared size (rows 1-6) less the header's row: the blank row 4 is in it.
        pytest.param(xlsx_bytes(LIST), "list.xlsx", 4, id="xlsx-declared-size"),
        pytest.param(xlsx_unsized_bytes(LIST), "list.xlsx", 3, id="xlsx-counted"),
        pytest.param("\n姓名,手机\n王伟,13800138000\n,\n李娜,139\n张三,1\n".encode(), "list.csv", 3, id="csv-counted"),
    ],
)
def test_the_worker_reads_headers_count_and_rows_as_the_upload_was_inspected(
    data: bytes, name: str, count: int
) -> None:
    fileobj = io.BytesIO(data)
    info = reading.inspect(fileobj, name)
    expected_rows = list(reading.data_rows(fileobj, info))

    with _stored(data, name) as listed:
        assert listed.headers == info.headers == ["姓名", "手机"]
        assert listed.count() == count
        assert list(listed.data_rows()) == expected_rows
        assert [line for line, _cells in expected_rows] == [3, 5, 6]


def test_the_worker_opens_a_workbook_once(monkeypatch: pytest.MonkeyPatch) -> None:
    """openpyxl reads the whole shared-strings table on every open: headers, count and rows share one."""
    import openpyxl

    opened: list[object] = []
    real = openpyxl.load_workbook

    def counting(*args: object, **kwargs: object) -> object:
        opened.append(args)
        return real(*args, **kwargs)

    data = xlsx_unsized_bytes(LIST)
    stored = _stored(data, "list.xlsx")
    monkeypatch.setattr(openpyxl, "load_workbook", counting)
    with stored as listed:
        listed.count()
        rows = list(listed.data_rows())

    assert len(opened) == 1
    assert [cells[0] for _line, cells in rows] == ["王伟", "李娜", "张三"]


def with_declared_size(data: bytes, ref: str) -> bytes:
    """The workbook with its first sheet's ``<dimension>`` rewritten, as a careless writer leaves it."""
    source, out = zipfile.ZipFile(io.BytesIO(data)), io.BytesIO()
    with zipfile.ZipFile(out, "w") as target:
        for item in source.infolist():
            content = source.read(item.filename)
            if item.filename == "xl/worksheets/sheet1.xml":
                content = re.sub(rb'<dimension ref="[^"]*"', b'<dimension ref="%s"' % ref.encode(), content)
            target.writestr(item, content)
    return out.getvalue()


def test_a_workbook_that_declares_too_few_rows_is_read_to_its_end() -> None:
    """openpyxl stops at the declared last row; the rows after it must not vanish without a word."""
    rows: list[list[object]] = [["name", "phone"], *([f"P{i}", 13800138000 + i] for i in range(6))]
    data = with_declared_size(xlsx_bytes(rows), "A1:B3")

    info, read = _read(data, "list.xlsx")
    with _stored(data, "list.xlsx") as listed:
        worker_rows = list(listed.data_rows())
        declared = listed.count()

    assert info.headers == ["name", "phone"]
    assert [cells[0] for _line, cells in read] == [f"P{i}" for i in range(6)]
    assert worker_rows == read
    assert declared == 2  # the writer's claim, for the progress bar only
