"""The design's rules, checked by reading the code and by running it: the layers import
one way with no cycle, every write happens in a unit of work, every role's permission
pattern names something real, and each rule has one home."""
from __future__ import annotations

import ast
import re
import subprocess
from pathlib import Path

import pytest
from sqlalchemy import select

from app.transactions import atomic
from tests.conftest import user_named

ROOT = Path(__file__).resolve().parent.parent


# --- imports: one direction, no cycle ---------------------------------------------------

def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def import_graph() -> dict[str, set[str]]:
    """File → the files of app/ and modules/ it imports, imports inside functions
    included (``from pkg import mod`` names the file ``pkg/mod.py``)."""
    files = [*ROOT.glob("app/**/*.py"), *ROOT.glob("modules/**/*.py")]
    names = {_module_name(p): p for p in files}
    graph: dict[str, set[str]] = {name: set() for name in names}
    for name, path in names.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    prefix = package.split(".")[:len(package.split(".")) - node.level + 1]
                    base = ".".join([*prefix, *([node.module] if node.module else [])])
                targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in names else base
                           for a in node.names]
            else:
                continue
            graph[name].update(t for t in targets if t in names and t != name)
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected groups of more than one file (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for nxt in graph[node]:
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            group = []
            while True:
                member = stack.pop()
                group.append(member)
                if member == node:
                    break
            if len(group) > 1:
                found.append(sorted(group))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def test_no_import_cycle_between_files_and_the_platform_imports_no_module():
    graph = import_graph()
    assert cycles(graph) == []
    upward = sorted((a, b) for a, bs in graph.items() for b in bs
                    if a.startswith("app") and b.startswith("modules"))
    assert upward == []


def test_the_cycle_finder_finds_a_cycle():
    """The checker itself (a test that cannot fail proves nothing)."""
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


# --- every write inside a unit of work ----------------------------------------------------

def test_a_write_outside_atomic_is_refused_and_inside_it_commits(app):
    from app.extensions import db
    from app.offices.models import DocumentType
    from app.transactions import OutsideUnitOfWorkError

    with app.app_context():
        kind = DocumentType(code="GUARD-1", name_vi="Thử", name_en="Test", active=True)
        db.session.add(kind)
        with pytest.raises(OutsideUnitOfWorkError):
            db.session.flush()
        db.session.rollback()
        with atomic(db.session):
            db.session.add(DocumentType(code="GUARD-2", name_vi="Thử", name_en="Test"))
        assert db.session.scalars(select(DocumentType).where(
            DocumentType.code.in_(["GUARD-1", "GUARD-2"]))).all()[0].code == "GUARD-2"


def test_a_service_called_by_an_edge_without_atomic_writes_nothing(app, db_session):
    """The rule is enforced where services are called: an edge that forgot the unit of
    work fails loudly instead of leaving a half-written change for a later commit."""
    from app.extensions import db
    from app.transactions import OutsideUnitOfWorkError
    from modules.registers import services

    with app.test_request_context():
        clerk = user_named(db.session, "clerk.a")
        register_id = services.open_registers(db.session, clerk)[0].id
        with pytest.raises(OutsideUnitOfWorkError):
            services.close_register(db.session, clerk, register_id)
            db.session.flush()
        db.session.rollback()
    db_session.expire_all()
    from modules.registers.models import Register, RegisterStatus

    assert db_session.get(Register, register_id).status is RegisterStatus.open


def test_fab_doors_write_nothing_without_a_service(app):
    """A bare ``Datamodel`` is read-only: nothing writes around a model's own rules."""
    from app.crud import Datamodel
    from app.errors import DomainError
    from modules.copies.models import CopyRequest

    with app.app_context():
        model = Datamodel(CopyRequest)
        row = model.session.scalars(select(CopyRequest)).first()
        if row is None:
            pytest.skip("no request yet")
        with pytest.raises(DomainError):
            model.service.update(model.session, None, row)
        with pytest.raises(DomainError):
            model.service.delete(model.session, None, row)


# --- roles: every pattern names a real permission -----------------------------------------

def real_permissions(app) -> set[tuple[str, str]]:
    """(view, permission) pairs the app has: each view's permissions and actions, and
    ``menu_access`` on every menu entry and category."""
    found = set()
    for view in app.appbuilder.baseviews:
        for perm in getattr(view, "base_permissions", None) or []:
            found.add((view.class_permission_name, perm))
    for item in app.appbuilder.menu.get_list():
        found.add((item.name, "menu_access"))
        for child in item.childs or []:
            if child.name != "-":
                found.add((child.name, "menu_access"))
    return found


@pytest.mark.parametrize("role", ["OfficeAdmin", "Officer", "Leader", "Clerk", "Supervisor",
                                  "Citizen", "Public"])
def test_each_role_pattern_matches_a_real_permission(app, role):
    perms = real_permissions(app)
    dead = [pattern for pattern in app.config["FAB_ROLES"][role]
            if not any(re.match(pattern[0], view) and re.match(pattern[1], perm)
                       for view, perm in perms)]
    assert dead == [], f"{role}: patterns that grant nothing: {dead}"


# --- one home per rule ----------------------------------------------------------------------

def _grep(pattern: str) -> list[str]:
    found = subprocess.run(["grep", "-rnE", pattern, "app", "modules", "--include=*.py"],
                           cwd=ROOT, capture_output=True, text=True).stdout
    return [line for line in found.splitlines() if line]


def test_each_rule_is_defined_once():
    assert len(_grep(r"^def scope\(")) == 1  # the scope rule
    assert len(_grep(r"^class Workflow\b")) == 1  # the workflow engine
    assert len(_grep(r"^def claim\(")) == 1  # leased claims (outbox, exports)
    assert len(_grep(r"def date_in_words\(")) == 1 and len(_grep(r'f"ngày \{')) == 1
