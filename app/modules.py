"""Module registry: every feature package declares itself with one ``ModuleSpec``.

The registry imports modules, orders them by dependency and fails loudly on a
missing dependency, a cycle, a duplicate table name or an import error.  FAB's
ADDON_MANAGERS swallows such errors, so it is deliberately not used.
"""
from __future__ import annotations

import importlib
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from flask_appbuilder import Model

PLATFORM = "platform"


class ModuleError(RuntimeError):
    """A module cannot be loaded; the message says which and why."""


@dataclass(frozen=True)
class Job:
    """A periodic job a module contributes (run by APScheduler in app.jobs)."""

    id: str
    func: Callable[[], None]
    seconds: int | None = None
    cron: Mapping[str, str] | None = None
    #: A setting that overrides ``seconds`` (e.g. APPOINTMENT_JOBS_SECONDS).
    seconds_setting: str | None = None


@dataclass(frozen=True)
class ModuleSpec:
    """What a module is, what it needs and what it brings."""

    name: str
    depends: Sequence[str] = (PLATFORM,)
    models: str | None = None  # dotted path of the models module, imported first
    register: Callable[..., None] | None = None  # register(appbuilder): views and APIs
    roles: Mapping[str, Sequence[Sequence[str]]] = field(default_factory=dict)
    jobs: Sequence[Job] = ()
    cli: Callable[..., None] | None = None  # cli(group): adds commands to `flask saoy`
    demo: Callable[[], int] | None = None  # demo(): adds demo rows, returns how many
    #: warm_up(): one-time slow work (in an app context) done when a server starts, so
    #: that no user's first click pays for it.
    warm_up: Callable[[], None] | None = None
    #: file_refs(session, prefix): the file-store hashes starting with ``prefix`` that
    #: the module's rows refer to (a file no module refers to is an orphan).
    file_refs: Callable[..., Iterable[str]] | None = None
    #: role → the endpoint that is its home (a leader lands on the copies to sign).
    landing: Mapping[str, str] = field(default_factory=dict)


def import_spec(dotted: str) -> ModuleSpec:
    """Import a module package and return its ``MODULE``; errors are re-raised loudly."""
    try:
        package = importlib.import_module(dotted)
    except Exception as exc:  # noqa: BLE001 - re-raised with the module's name
        raise ModuleError(f"module {dotted!r} failed to import: {exc!r}") from exc
    spec = getattr(package, "MODULE", None)
    if not isinstance(spec, ModuleSpec):
        raise ModuleError(f"module {dotted!r} has no MODULE = ModuleSpec(...)")
    return spec


def order_specs(specs: Iterable[ModuleSpec]) -> list[ModuleSpec]:
    """Topological order; raises on a missing dependency, a duplicate or a cycle."""
    by_name: dict[str, ModuleSpec] = {}
    for spec in specs:
        if spec.name in by_name:
            raise ModuleError(f"module {spec.name!r} is declared twice")
        by_name[spec.name] = spec
    for spec in by_name.values():
        for dep in spec.depends:
            if dep != PLATFORM and dep not in by_name:
                raise ModuleError(
                    f"module {spec.name!r} depends on {dep!r}, which is not installed"
                )
    ordered: list[ModuleSpec] = []
    state: dict[str, str] = {}

    def visit(name: str, path: list[str]) -> None:
        if state.get(name) == "done":
            return
        if state.get(name) == "visiting":
            cycle = " -> ".join(path[path.index(name):] + [name])
            raise ModuleError(f"module dependency cycle: {cycle}")
        state[name] = "visiting"
        for dep in by_name[name].depends:
            if dep != PLATFORM:
                visit(dep, path + [name])
        state[name] = "done"
        ordered.append(by_name[name])

    for name in sorted(by_name):
        visit(name, [])
    return ordered


def import_models(specs: Sequence[ModuleSpec]) -> None:
    """Import every module's models and refuse two modules declaring one table.

    FAB's Model sets ``extend_existing=True``, so SQLAlchemy would silently merge
    two declarations of one table; ownership is checked here instead.
    """
    for spec in specs:
        if spec.models:
            try:
                importlib.import_module(spec.models)
            except Exception as exc:  # noqa: BLE001
                raise ModuleError(
                    f"models of module {spec.name!r} failed to import: {exc!r}"
                ) from exc
    check_table_owners()


def table_owner(class_module: str) -> str:
    """``modules.<name>.…`` belongs to that module; everything else to the platform."""
    parts = class_module.split(".")
    return parts[1] if parts[0] == "modules" and len(parts) > 1 else PLATFORM


def check_table_owners(registry=None) -> None:
    owners: dict[str, set[str]] = {}
    for mapper in (registry or Model.registry).mappers:
        cls = mapper.class_
        name = cls.__dict__.get("__tablename__")
        if name:
            owners.setdefault(name, set()).add(table_owner(cls.__module__))
    for name, found in owners.items():
        if len(found) > 1:
            raise ModuleError(f"table {name!r} is declared by several modules: {sorted(found)}")


def load_modules(dotted_names: Sequence[str]) -> list[ModuleSpec]:
    """Import, order and check the modules named in configuration."""
    specs = order_specs(import_spec(name) for name in dotted_names)
    import_models(specs)
    return specs


def merge_roles(
    base: Mapping[str, Sequence[Sequence[str]]], specs: Sequence[ModuleSpec]
) -> dict[str, list[list[str]]]:
    """Merge role fragments contributed by modules into FAB_ROLES; patterns anchored."""
    merged: dict[str, list[list[str]]] = {k: [list(p) for p in v] for k, v in base.items()}
    for spec in specs:
        for role, perms in spec.roles.items():
            for view, perm in perms:
                if not (view.startswith("^") and view.endswith("$")):
                    raise ModuleError(f"{spec.name}: role pattern {view!r} must be anchored")
                if not (perm.startswith("^") and perm.endswith("$")):
                    raise ModuleError(f"{spec.name}: role pattern {perm!r} must be anchored")
                merged.setdefault(role, []).append([view, perm])
    return merged
