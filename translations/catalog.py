"""Build messages.pot from our code *and* Flask-AppBuilder's and WTForms' (neither ships
Vietnamese): one catalog for every string a page shows.

    python translations/catalog.py extract   # write messages.pot
    python translations/catalog.py update    # merge into vi/en .po files
    python translations/catalog.py compile   # .po -> .mo
    python translations/catalog.py check     # exit 1 on missing/fuzzy/untranslated vi entries
    python translations/catalog.py fill F.json  # set vi strings from {msgid: msgstr}
"""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import flask_appbuilder
import wtforms
from babel.messages.pofile import read_po

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
POT = HERE / "messages.pot"
FAB_DIR = Path(flask_appbuilder.__file__).resolve().parent
WTFORMS_POT = Path(wtforms.__file__).resolve().parent / "locale" / "wtforms.pot"
LOCALES = ("vi", "en")
KEYWORDS = ["-k", "lazy_gettext", "-k", "_l", "-k", "lazy_formatter_gettext"]


def _pybabel(*args: str) -> None:
    subprocess.run([sys.executable, "-m", "babel.messages.frontend", *args], check=True)


def extract() -> None:
    ours = HERE / "ours.pot"
    fab = HERE / "fab.pot"
    _pybabel("extract", "-F", str(ROOT / "babel.cfg"), *KEYWORDS, "--sort-by-file",
             "--project", "SaoY", "-o", str(ours), str(ROOT / "app"), str(ROOT / "modules"))
    _pybabel("extract", "-F", str(ROOT / "babel.cfg"), *KEYWORDS, "--no-location",
             "--project", "SaoY", "-o", str(fab), str(FAB_DIR))
    with ours.open("rb") as fh:
        catalog = read_po(fh)
    for pot in (fab, WTFORMS_POT):
        with pot.open("rb") as fh:
            for message in read_po(fh):
                if message.id and message.id not in catalog:
                    catalog[message.id] = message
    from babel.messages.pofile import write_po

    with POT.open("wb") as fh:
        write_po(fh, catalog, width=100, omit_header=False)
    ours.unlink()
    fab.unlink()


def update() -> None:
    for locale in LOCALES:
        po = HERE / locale / "LC_MESSAGES" / "messages.po"
        if po.exists():
            _pybabel("update", "-i", str(POT), "-d", str(HERE), "-l", locale, "--no-fuzzy-matching",
                     "-w", "100")
        else:
            _pybabel("init", "-i", str(POT), "-d", str(HERE), "-l", locale, "-w", "100")


def compile_all() -> None:
    _pybabel("compile", "-d", str(HERE), "--use-fuzzy" if False else "--statistics")


def problems(locale: str = "vi") -> list[str]:
    """msgids of the pot that the locale's catalog lacks, leaves empty or marks fuzzy."""
    with POT.open("rb") as fh:
        template = read_po(fh)
    with (HERE / locale / "LC_MESSAGES" / "messages.po").open("rb") as fh:
        catalog = read_po(fh)
    found = []
    for message in template:
        if not message.id:
            continue
        entry = catalog.get(message.id)
        strings = entry.string if entry else None
        values = strings if isinstance(strings, (list, tuple)) else [strings]
        if entry is None or entry.fuzzy or not all(values):
            found.append(message.id if isinstance(message.id, str) else message.id[0])
    return found


def fill(path: str, locale: str = "vi") -> int:
    """Write translations from a JSON object {msgid: msgstr} into the locale's catalog."""
    import json

    from babel.messages.pofile import write_po

    po = HERE / locale / "LC_MESSAGES" / "messages.po"
    with po.open("rb") as fh:
        catalog = read_po(fh)
    done = 0
    for msgid, text in json.loads(Path(path).read_text(encoding="utf-8")).items():
        entry = catalog.get(msgid)
        if entry is not None:
            entry.string = (text,) * catalog.num_plurals if entry.pluralizable else text
            entry.flags = set(entry.flags) - {"fuzzy"}
            done += 1
    with po.open("wb") as fh:
        write_po(fh, catalog, width=100)
    return done


if __name__ == "__main__":
    command = sys.argv[1] if len(sys.argv) > 1 else "check"
    if command == "extract":
        extract()
    elif command == "update":
        update()
    elif command == "compile":
        compile_all()
    elif command == "fill":
        print(f"filled {fill(sys.argv[2])} entries")
    elif command == "check":
        missing = problems("vi")
        for msgid in missing:
            print(f"untranslated: {msgid!r}")
        sys.exit(1 if missing else 0)
