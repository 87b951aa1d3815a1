"""PII detection for Chinese deployments: true and false positives for each kind, overlaps, masking."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from moderation.pii import (
    ALL_KINDS,
    PIIMatch,
    find_pii,
    is_valid_resident_id,
    luhn_ok,
    mask_spans,
)

# GB 11643-1999 check character of 11010519491231002 (region 110105, born 1949-12-31, sequence 002):
#   digits   1  1  0  1  0  5  1  9  4  9  1  2  3  1  0  0  2
#   weights  7  9 10  5  8  4  2  1  6  3  7  9 10  5  8  4  2
#   products 7 +9 +0 +5 +0 +20 +2 +9 +24 +27 +7 +18 +30 +5 +0 +0 +4 = 167
#   167 mod 11 = 2  ->  "10X98765432"[2] = "X"
VALID_ID_X = "11010519491231002X"
WRONG_ID = "110105194912310021"  # same body, check "1" instead of "X"; also Luhn-invalid

# A valid ID with a numeric check character that is *also* Luhn-valid, so a bank-card candidate
# exists on the same digits and the overlap rule has to pick id_card:
#   digits   4  4  0  3  0  5  1  9  9  0  0  3  1  5  1  1  5   (440305, 1990-03-15, sequence 115)
#   products 28+36 +0+15 +0+20 +2 +9+54 +0 +0+27+10+25 +8 +4+10 = 248
#   248 mod 11 = 6  ->  "10X98765432"[6] = "6"
VALID_ID_LUHN = "440305199003151156"

# 19-digit UnionPay-style card, Luhn-valid. From the right, doubling every second digit:
#   undoubled 8,1,9,7,5,3,1,0,2,6           sum 42
#   doubled   2,0,8,6,4,2,2,2,2 -> 4,0,7,3,8,4,4,4,4  sum 38      42 + 38 = 80 = 0 mod 10
UNIONPAY = "6222021234567890128"
VISA = "4111111111111111"


def kinds_and_text(text: str, **kw) -> list[tuple[str, str]]:
    return [(m.kind, text[m.start:m.end]) for m in find_pii(text, **kw)]


# --- resident ID --------------------------------------------------------------------------------


def test_resident_id_checksum_date_and_region():
    assert is_valid_resident_id(VALID_ID_X)
    assert is_valid_resident_id(VALID_ID_X.lower())
    assert is_valid_resident_id(VALID_ID_LUHN)
    assert not is_valid_resident_id(WRONG_ID)


@pytest.mark.parametrize(
    "bad",
    [
        "11010519491231002",  # 17 characters
        "11010519491231002XX",  # 19 characters
        "1101051949123100X2",  # X not in the last position
        "11010518491231002X",  # birth year 1849 (body changed, so also a checksum failure)
        "０" * 18,  # full-width digits: callers NFKC-normalise first
    ],
)
def test_resident_id_rejects_malformed(bad):
    assert not is_valid_resident_id(bad)


def _with_check(body: str) -> str:
    """Independent GB 11643 check-character computation, to isolate date/region failures."""
    weights = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
    return body + "10X98765432"[sum(int(c) * w for c, w in zip(body, weights)) % 11]


def test_resident_id_needs_real_date_and_region_even_with_correct_checksum():
    assert _with_check("11010519491231002") == VALID_ID_X
    assert not is_valid_resident_id(_with_check("11010519490230002"))  # 30 February
    assert not is_valid_resident_id(_with_check("11010518991231002"))  # year 1899
    assert not is_valid_resident_id(_with_check("11010521011231002"))  # year 2101
    assert not is_valid_resident_id(_with_check("11010519491301002"))  # month 13
    assert not is_valid_resident_id(_with_check("10010519491231002"))  # region 10
    assert not is_valid_resident_id(_with_check("83010519491231002"))  # region 83
    assert is_valid_resident_id(_with_check("82010520000229002"))  # region 82, 2000-02-29 (leap)
    assert not is_valid_resident_id(_with_check("82010519000229002"))  # 1900 was not a leap year


def test_valid_id_found_in_chinese_text_including_lower_case_x():
    text = f"身份证号{VALID_ID_X}，请核对"
    assert kinds_and_text(text) == [("id_card", VALID_ID_X)]
    lower = f"证件:{VALID_ID_X.lower()}。"
    assert kinds_and_text(lower) == [("id_card", VALID_ID_X.lower())]


def test_id_with_wrong_checksum_is_not_reported():
    assert find_pii(f"身份证号{WRONG_ID}，请核对") == []


def test_id_inside_a_longer_digit_run_is_not_reported():
    assert find_pii("9" + VALID_ID_LUHN) == []
    assert find_pii(VALID_ID_LUHN + "0") == []


def test_wrong_checksum_id_that_is_luhn_valid_is_masked_as_a_card():
    # Decision: an 18-digit Luhn-valid run is a possible card; reporting it errs on the side of privacy.
    digits = "110105194912310028"
    assert luhn_ok(digits) and not is_valid_resident_id(digits)
    assert kinds_and_text(digits) == [("bank_card", digits)]


# --- bank cards -----------------------------------------------------------------------------------


def test_luhn():
    assert luhn_ok(VISA)
    assert luhn_ok(UNIONPAY)
    assert not luhn_ok("4111111111111112")
    assert not luhn_ok("6222021234567890127")
    assert not luhn_ok("")
    assert not luhn_ok("4111 1111 1111 1111")  # bare digits only
    assert not luhn_ok("４１１１１１１１１１１１１１１１")  # full-width


@pytest.mark.parametrize(
    "card",
    [
        VISA,
        "4111 1111 1111 1111",
        "4111-1111-1111-1111",
        UNIONPAY,
        "6222 0212 3456 7890 128",
        "6222-0212-3456-7890-128",
    ],
)
def test_luhn_valid_cards_found_solid_and_grouped(card):
    text = f"银行卡号：{card}，开户行北京分行"
    assert kinds_and_text(text) == [("bank_card", card)]


def test_card_touching_chinese_characters():
    text = f"卡号{UNIONPAY}已冻结"
    assert find_pii(text) == [PIIMatch("bank_card", 2, 2 + len(UNIONPAY))]


@pytest.mark.parametrize(
    "not_card",
    [
        "4111111111111112",  # Luhn fails
        "6222021234567890127",  # Luhn fails
        "4111 1111-1111 1111",  # mixed separators
        "41111111111111110000",  # 20 digits
        "411111111111",  # 12 digits
    ],
)
def test_not_cards(not_card):
    assert find_pii(f"订单号{not_card}已发货") == []


# --- mobiles --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "mobile",
    [
        "13800138000",
        "138 0013 8000",
        "138-0013-8000",
        "+8613800138000",
        "+86 138 0013 8000",
        "+86-138-0013-8000",
        "008613800138000",
        "0086 13800138000",
        "86 13800138000",
        "19912345678",
    ],
)
def test_mobiles_in_several_formats(mobile):
    text = f"联系电话：{mobile}（工作日）"
    assert kinds_and_text(text) == [("mobile", mobile)]


def test_mobile_inside_chinese_text():
    text = "请拨打13800138000联系"
    assert find_pii(text) == [PIIMatch("mobile", 3, 14)]


def test_luhn_valid_86_prefixed_mobile_is_a_mobile_not_a_card():
    assert luhn_ok("8613800138002")
    assert kinds_and_text("电话8613800138002") == [("mobile", "8613800138002")]


@pytest.mark.parametrize(
    "not_mobile",
    [
        "213800138000",  # 12 digits: a mobile inside a longer run
        "138001380001",  # 12 digits
        "1380013800",  # 10 digits
        "12800138000",  # second digit 2
        "10086",  # service number
        "138 0013-8000",  # inconsistent separators
        "1380013800012345",  # 16-digit run (Luhn-invalid) that starts like a mobile
    ],
)
def test_not_mobiles(not_mobile):
    assert find_pii(f"编号{not_mobile}。") == []


def test_mobile_not_found_inside_a_card():
    card = "6213800138000002"
    assert not luhn_ok(card)  # so nothing at all is reported: no card, and no mobile inside it
    assert find_pii(card) == []


# --- e-mail ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "email"),
    [
        ("邮箱zhang.san@example.com联系", "zhang.san@example.com"),
        ("请发邮件至 li_si+rag@mail.corp.example.cn。", "li_si+rag@mail.corp.example.cn"),
        ("（wang-wu%ops@sub-domain.example.org）", "wang-wu%ops@sub-domain.example.org"),
        ("Email: ADMIN@EXAMPLE.COM.", "ADMIN@EXAMPLE.COM"),
    ],
)
def test_emails_in_chinese_text(text, email):
    assert kinds_and_text(text) == [("email", email)]


@pytest.mark.parametrize(
    "not_email",
    [
        "user@localhost",  # no dot in the domain
        "a@b.c",  # one-letter TLD
        "@example.com",  # no local part
        "zhang@例子.com",  # non-ASCII domain
        "ｚｈａｎｇ＠ｅｘａｍｐｌｅ．ｃｏｍ",  # full-width: callers NFKC-normalise first
        "a@-bad.example.com",  # label starts with a hyphen
    ],
)
def test_not_emails(not_email):
    assert find_pii(f"联系{not_email}谢谢") == []


def test_mobile_as_email_local_part_is_one_email():
    text = "邮箱13800138000@163.com"
    assert kinds_and_text(text) == [("email", "13800138000@163.com")]


# --- overlaps, ordering, kinds filter ----------------------------------------------------------


def test_valid_id_that_is_also_luhn_valid_is_reported_once_as_id_card():
    assert luhn_ok(VALID_ID_LUHN) and is_valid_resident_id(VALID_ID_LUHN)
    assert find_pii(VALID_ID_LUHN) == [PIIMatch("id_card", 0, 18)]
    assert find_pii(VALID_ID_LUHN, kinds=frozenset({"bank_card"})) == []  # never relabelled as a card


MIXED = (
    f"张三，身份证{VALID_ID_X}，手机+86 138-0013-8000，"
    f"邮箱zhang.san@example.com，工资卡6222 0212 3456 7890 128，备用卡{VISA}。"
)


def test_mixed_text_sorted_and_non_overlapping():
    found = find_pii(MIXED)
    assert [(m.kind, MIXED[m.start:m.end]) for m in found] == [
        ("id_card", VALID_ID_X),
        ("mobile", "+86 138-0013-8000"),
        ("email", "zhang.san@example.com"),
        ("bank_card", "6222 0212 3456 7890 128"),
        ("bank_card", VISA),
    ]
    assert all(a.end <= b.start for a, b in zip(found, found[1:]))


def test_kinds_filter():
    assert kinds_and_text(MIXED, kinds=frozenset({"mobile"})) == [("mobile", "+86 138-0013-8000")]
    assert [k for k, _ in kinds_and_text(MIXED, kinds=frozenset({"bank_card", "email"}))] == [
        "email", "bank_card", "bank_card",
    ]
    assert find_pii(MIXED, kinds=frozenset()) == []
    assert len(find_pii(MIXED, kinds=ALL_KINDS)) == 5
    with pytest.raises(ValueError, match="phone"):
        find_pii(MIXED, kinds=frozenset({"phone"}))


def test_no_pii_and_empty_text():
    assert find_pii("") == []
    assert find_pii("知问网关的平均延迟为2毫秒，版本v2.3.0，发布于2024年5月1日。") == []


# --- masking --------------------------------------------------------------------------------------


def test_mask_spans_preserves_length_and_offsets():
    found = find_pii(MIXED)
    masked = mask_spans(MIXED, [(m.start, m.end) for m in found])
    assert len(masked) == len(MIXED)
    assert masked.startswith("张三，身份证" + "＊" * 18 + "，手机" + "＊" * len("+86 138-0013-8000") + "，")
    assert "13800138000" not in masked.replace("-", "").replace(" ", "")
    assert VALID_ID_X not in masked and "zhang" not in masked and VISA not in masked
    assert find_pii(masked) == []
    # Text outside the spans is untouched.
    for i, (a, b) in enumerate(zip(MIXED, masked)):
        if not any(m.start <= i < m.end for m in found):
            assert a == b


def test_mask_spans_overlapping_unsorted_empty_and_custom_char():
    assert mask_spans("abcdefgh", [(4, 6), (1, 3), (2, 5), (7, 7)]) == "a＊＊＊＊＊gh"
    assert mask_spans("请拨打13800138000联系", [(3, 14)], char="*") == "请拨打***********联系"
    assert mask_spans("abc", []) == "abc"
    assert mask_spans("", [(0, 0)]) == ""


@pytest.mark.parametrize("span", [(-1, 2), (2, 1), (0, 4)])
def test_mask_spans_rejects_bad_spans(span):
    with pytest.raises(ValueError):
        mask_spans("abc", [span])


@pytest.mark.parametrize("char", ["", "**"])
def test_mask_spans_rejects_multi_character_mask(char):
    with pytest.raises(ValueError):
        mask_spans("abc", [(0, 1)], char=char)


@given(st.text(max_size=40), st.lists(st.tuples(st.integers(0, 40), st.integers(0, 40)), max_size=5))
def test_mask_spans_property_length_and_positions(text, raw):
    spans = [(min(a, b, len(text)), min(max(a, b), len(text))) for a, b in raw]
    masked = mask_spans(text, spans)
    assert len(masked) == len(text)
    for i, (a, b) in enumerate(zip(text, masked)):
        assert b == ("＊" if any(s <= i < e for s, e in spans) else a)


@given(st.text(alphabet="0123456789 -+@.a中X", max_size=60))
def test_find_pii_always_sorted_and_non_overlapping(text):
    found = find_pii(text)
    assert all(0 <= m.start < m.end <= len(text) for m in found)
    assert all(a.end <= b.start for a, b in zip(found, found[1:]))
