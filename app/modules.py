"""The registry: every part of the product — the platform's own parts and the feature
modules — declares itself with one ``ModuleSpec``, and the spec is the whole wiring:
models, menus, views and APIs, roles, jobs, hooks into other modules, health checks,
command-line groups, demo data.  ``create_app`` is a loop over the specs.

The registry imports the parts, orders them by dependency (``graphlib``) and fails
loudly on a missing dependency, a cycle, a duplicate table name, a hook nobody offers
or an import error.  FAB's ADDON_MANAGERS swallows such errors, so it is not used.

References to code are dotted strings (``"modules.copies.views:CopyRequestView"``),
resolved when the app is built: a spec imports nothing, so reading
``modules/*/__init__.py`` costs nothing and fixes no import order.
"""
from __future__ import annotations

import importlib
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from graphlib import CycleError, TopologicalSorter
from typing import Any

from flask import Flask, current_app
from flask_appbuilder import Model

PLATFORM = "platform"


class ModuleError(RuntimeError):
    """A module cannot be loaded; the message says which and why."""


def resolve(ref: str | Callable | type) -> Any:
    """``"package.module:name"`` → the object (anything else is returned as it is)."""
    if not isinstance(ref, str):
        return ref
    module_name, _, attribute = ref.partition(":")
    try:
        found = importlib.import_module(module_name)
        for part in attribute.split(".") if attribute else ():
            found = getattr(found, part)
    except Exception as exc:
        raise ModuleError(f"{ref!r} cannot be loaded: {exc!r}") from exc
    return found


@dataclass(frozen=True)
class Job:
    """A periodic job a module contributes (run by APScheduler in app.jobs)."""

    id: str
    func: str | Callable[[], None]
    seconds: int | None = None
    cron: Mapping[str, str] | None = None
    #: A setting that overrides ``seconds`` (e.g. APPOINTMENT_JOBS_SECONDS).
    seconds_setting: str | None = None

    def run(self) -> None:
        resolve(self.func)()


@dataclass(frozen=True)
class Category:
    """A menu category: its permission name (stable English), label and icon."""

    name: str
    label: Any
    icon: str = ""


@dataclass(frozen=True)
class View:
    """A page (FAB view) and its menu entry; ``name`` is the menu's permission key
    (stable English), None for a page without a menu entry."""

    view: str
    name: str | None = None
    label: Any = None
    icon: str = ""
    category: Category | None = None
    href: str | None = None
    #: (config) → whether this view exists in this deployment.
    when: Callable[[Mapping[str, Any]], bool] | None = None
    #: A setting naming a per-address limit on this view's POSTs (anonymous doors).
    rate_limit: str | None = None


@dataclass(frozen=True)
class Link:
    """A menu entry that is only a link (to a page of a view declared elsewhere)."""

    name: str
    label: Any
    href: str
    icon: str = ""
    category: Category | None = None


@dataclass(frozen=True)
class Api:
    """A REST API (FAB BaseApi) under /api/v1/."""

    api: str
    rate_limit: str | None = None


MenuEntry = View | Link | Api


@dataclass(frozen=True)
class ModuleSpec:
    """What a part of the product is, what it needs and what it brings."""

    name: str
    depends: Sequence[str] = (PLATFORM,)
    #: The platform's own parts load first, in the order the platform lists them.
    platform: bool = False
    models: str | None = None  # dotted path of the models module, imported first
    #: Views, links and APIs, in menu order.
    menu: Sequence[MenuEntry] = ()
    roles: Mapping[str, Sequence[Sequence[str]]] = field(default_factory=dict)
    jobs: Sequence[Job] = ()
    #: Names of the hooks this module calls (``handlers(name)``): others may plug in.
    offers_hooks: Sequence[str] = ()
    #: hook name → handler (dotted): this module's part in another module's procedure.
    hooks: Mapping[str, str] = field(default_factory=dict)
    #: name → check (dotted) returning ``(details, ok)`` for ``/health/``.
    health: Mapping[str, str] = field(default_factory=dict)
    cli: str | None = None  # "pkg.mod:register": register(group) adds `saoy` commands
    demo: str | None = None  # "pkg.mod:load": load() adds demo rows, returns how many
    #: One-time slow work (in an app context) done when a server starts, so that no
    #: user's first click pays for it.
    warm_up: str | None = None
    #: file_refs(session, prefix): the file-store hashes starting with ``prefix`` that
    #: the module's rows refer to (a file no module refers to is an orphan).
    file_refs: str | None = None
    #: role → the endpoint that is its home (a leader lands on the copies to sign).
    landing: Mapping[str, str] = field(default_factory=dict)
    #: (app, appbuilder) → what the declarations above cannot say (template globals).
    setup: str | None = None


def import_spec(dotted: str) -> ModuleSpec:
    """Import a part and return its ``MODULE``; errors are re-raised loudly."""
    try:
        package = importlib.import_module(dotted)
    except Exception as exc:
        raise ModuleError(f"module {dotted!r} failed to import: {exc!r}") from exc
    spec = getattr(package, "MODULE", None)
    if not isinstance(spec, ModuleSpec):
        raise ModuleError(f"module {dotted!r} has no MODULE = ModuleSpec(...)")
    return spec


def order_specs(specs: Iterable[ModuleSpec]) -> list[ModuleSpec]:
    """The platform's parts in their order, then the modules in dependency order (ties in
    the order given); raises on a missing dependency, a duplicate or a cycle."""
    by_name: dict[str, ModuleSpec] = {}
    for spec in specs:
        if spec.name in by_name:
            raise ModuleError(f"module {spec.name!r} is declared twice")
        by_name[spec.name] = spec
    platform = [name for name, spec in by_name.items() if spec.platform]
    sorter: TopologicalSorter[str] = TopologicalSorter()
    for name, spec in by_name.items():
        # The platform's parts keep their listed order; a module needs all of them.
        needs = set(platform[:platform.index(name)] if spec.platform else platform)
        for dep in spec.depends:
            if dep != PLATFORM and dep not in by_name:
                raise ModuleError(
                    f"module {spec.name!r} depends on {dep!r}, which is not installed")
            if dep != PLATFORM:
                needs.add(dep)
        sorter.add(name, *needs)
    order = list(by_name)
    try:
        sorter.prepare()
    except CycleError as exc:
        raise ModuleError(f"module dependency cycle: {' -> '.join(exc.args[1])}") from None
    ordered: list[ModuleSpec] = []
    while sorter.is_active():
        ready = sorted(sorter.get_ready(), key=order.index)
        ordered.extend(by_name[name] for name in ready)
        sorter.done(*ready)
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
            except Exception as exc:
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


def check_hooks(specs: Sequence[ModuleSpec]) -> dict[str, list[Callable]]:
    """Every hook a module plugs into is offered by a loaded module; name → handlers."""
    offered = {hook for spec in specs for hook in spec.offers_hooks}
    found: dict[str, list[Callable]] = {hook: [] for hook in offered}
    for spec in specs:
        for hook, handler in spec.hooks.items():
            if hook not in offered:
                raise ModuleError(f"{spec.name}: no installed module offers the hook {hook!r}")
            found[hook].append(resolve(handler))
    return found


def load_modules(dotted_names: Sequence[str]) -> list[ModuleSpec]:
    """Import, order and check the parts and modules named."""
    specs = order_specs(import_spec(name) for name in dotted_names)
    import_models(specs)
    return specs


def specs_of(app: Flask | None = None) -> list[ModuleSpec]:
    return (app or current_app).extensions["saoy_modules"]


def handlers(hook: str) -> list[Callable]:
    """The handlers other modules plugged into ``hook`` (one this module offers)."""
    return current_app.extensions["saoy_hooks"][hook]


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


def register_menu(app: Flask, appbuilder: Any, spec: ModuleSpec) -> None:
    """Add a spec's views, links and APIs to FAB, in order; rate limits on the doors that
    ask for one."""
    for entry in spec.menu:
        if isinstance(entry, Link):
            appbuilder.add_link(entry.name, label=entry.label, href=entry.href,
                                icon=entry.icon, **_category(entry.category))
            continue
        if isinstance(entry, Api):
            added = appbuilder.add_api(resolve(entry.api))
        elif entry.when is not None and not entry.when(app.config):
            continue
        elif entry.name is None:
            added = appbuilder.add_view_no_menu(resolve(entry.view))
        else:
            extra = {"href": entry.href} if entry.href else {}
            added = appbuilder.add_view(resolve(entry.view), entry.name, label=entry.label,
                                        icon=entry.icon, **extra,
                                        **_category(entry.category))
        if entry.rate_limit:  # one bucket per client and setting, across the doors sharing it
            setting = entry.rate_limit
            appbuilder.sm.limiter.shared_limit(lambda s=setting: app.config[s], scope=setting,
                                               methods=["POST"])(added.blueprint)


def _category(category: Category | None) -> dict[str, Any]:
    if category is None:
        return {}
    return {"category": category.name, "category_label": category.label,
            "category_icon": category.icon}


def register_all(app: Flask, appbuilder: Any, specs: Sequence[ModuleSpec]) -> None:
    """The whole wiring of every spec: menus, views, APIs, setup, hooks."""
    app.extensions["saoy_hooks"] = check_hooks(specs)
    for spec in specs:
        register_menu(app, appbuilder, spec)
        if spec.setup:
            resolve(spec.setup)(app, appbuilder)
