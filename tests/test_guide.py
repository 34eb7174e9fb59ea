"""The user guide (docs/guide/) shows the product as the browser tests saw it: every
picture it shows is a screenshot a test takes, one page per role, Vietnamese first."""
from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
GUIDE = ROOT / "docs" / "guide"


def _taken_by_tests() -> set[str]:
    """The names the browser tests give ``screenshot(driver, name)``: literal strings of
    the files that take screenshots (a name may sit in a list the test walks)."""
    names: set[str] = set()
    for path in (ROOT / "tests").glob("test_*.py"):
        text = path.read_text()
        if "screenshot(" in text:
            names |= set(re.findall(r'"((?:citizen|officer|officeadmin|leader|clerk|verify|'
                                    r'supervisor|dashboard)[\w-]*)"', text))
    return names


def test_every_picture_in_the_guide_is_a_screenshot_the_tests_take():
    taken = _taken_by_tests()
    shown = {m for page in GUIDE.glob("*.md")
             for m in re.findall(r"\]\(screenshots/([\w-]+)\.png\)", page.read_text())}
    assert shown, "the guide shows no screenshot"
    assert shown <= taken, f"pictures no test takes: {sorted(shown - taken)}"
    missing = [m for m in shown if not (GUIDE / "screenshots" / f"{m}.png").is_file()]
    assert not missing, missing


def test_one_page_per_role_vietnamese_first_with_english_beside():
    for role in ("citizen", "officer", "leader", "clerk", "officeadmin", "supervisor"):
        text = (GUIDE / f"{role}.md").read_text()
        assert "## English" in text, role
        vietnamese = text.split("## English", 1)[0]
        assert re.search(r"[ăâđêôơư]", vietnamese), role  # written in Vietnamese, first
        assert f"({role}.md)" in (GUIDE / "README.md").read_text(), role
