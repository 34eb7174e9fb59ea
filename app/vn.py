"""Vietnamese identifiers and text: phones, identity numbers, unaccented text.

Pure functions, no database: used by citizens, appointments and notifications.
"""
from __future__ import annotations

import re
import unicodedata

MOBILE_PREFIXES = ("3", "5", "7", "8", "9")


class InvalidIdentifierError(ValueError):
    """The value is not a valid Vietnamese identifier; the message says why."""


NATIONAL_DIGITS = 9  # a mobile number after 0 or 84


def normalize_phone(raw: str) -> str:
    """A Vietnamese mobile number in international form ``84xxxxxxxxx``.

    Accepts 0xxxxxxxxx, +84xxxxxxxxx, 84xxxxxxxxx with spaces, dots or dashes.
    """
    digits = re.sub(r"[\s.\-()]", "", raw or "")
    if digits.startswith("+"):
        digits = digits[1:]
    if digits.startswith("84") and len(digits) == len("84") + NATIONAL_DIGITS:
        national = digits[2:]
    elif digits.startswith("0") and len(digits) == len("0") + NATIONAL_DIGITS:
        national = digits[1:]
    else:
        raise InvalidIdentifierError("phone")
    if not national.isdigit() or national[0] not in MOBILE_PREFIXES:
        raise InvalidIdentifierError("phone")
    return "84" + national


def display_phone(international: str) -> str:
    """84912345678 → 0912 345 678."""
    national = "0" + international[2:]
    return f"{national[:4]} {national[4:7]} {national[7:]}"


# Province codes of the 12-digit personal number (Decision 1/2017 circular list).
PROVINCE_CODES = {
    "001", "002", "004", "006", "008", "010", "011", "012", "014", "015", "017", "019",
    "020", "022", "024", "025", "026", "027", "030", "031", "033", "034", "035", "036",
    "037", "038", "040", "042", "044", "045", "046", "048", "049", "051", "052", "054",
    "056", "058", "060", "062", "064", "066", "067", "068", "070", "072", "074", "075",
    "077", "079", "080", "082", "083", "084", "086", "087", "089", "091", "092", "093",
    "094", "095", "096",
}


def identity_kind(value: str) -> str:
    """Classify and validate: ``cccd`` (12 digits), ``cmnd`` (9), ``mst`` (10 or 10-3).

    The 12-digit number is checked by structure: province code, then a
    century/sex digit (0–9, even = male) consistent with the birth-year digits.
    """
    value = (value or "").strip()
    if re.fullmatch(r"\d{12}", value):
        if value[:3] not in PROVINCE_CODES:
            raise InvalidIdentifierError("province")
        return "cccd"
    if re.fullmatch(r"\d{9}", value):
        return "cmnd"
    if re.fullmatch(r"\d{10}(-\d{3})?", value):
        return "mst"
    raise InvalidIdentifierError("format")


_SPECIAL = str.maketrans({"đ": "d", "Đ": "D"})


def unaccent(text: str) -> str:
    """Vietnamese without diacritics, for SMS gateways that need plain ASCII."""
    decomposed = unicodedata.normalize("NFD", text.translate(_SPECIAL))
    return "".join(c for c in decomposed if not unicodedata.combining(c))


def slug(text: str) -> str:
    """Plain lower-case words joined by hyphens, for file names ("01/2026-SCTĐT/BS" →
    "01-2026-sctdt-bs"): every mail client and file system takes them."""
    return "-".join(re.findall(r"[a-z0-9]+", unaccent(text or "").lower()))
