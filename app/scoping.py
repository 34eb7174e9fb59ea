"""Office scoping: the one mechanism that decides which rows a user may see.

Every office-owned model mixes in ``OfficeOwned``.  Every door — web list, show,
edit, delete, ``@action``, ``action_post``, REST, exports, file downloads and our
own pages — asks the same question, ``visible_office_ids(user)``, through
``OFFICE_SCOPE`` (FAB base filter) or ``scoped(...)`` (service lookups).
Another office's row is answered with 404, never 403, so ids leak nothing.
"""
from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Generic, TypeVar

from flask import abort, current_app, flash, g, has_request_context, redirect, request
from flask_appbuilder import ModelView, expose, has_access
from flask_appbuilder.api import ModelRestApi
from flask_appbuilder.models.filters import BaseFilter
from flask_appbuilder.urltools import get_filter_args
from flask_babel import lazy_gettext as _l
from sqlalchemy import ForeignKey, select
from sqlalchemy.orm import Mapped, Session, declared_attr, mapped_column, relationship

from app.crud import DomainErrorResponses, ServiceFormViewMixin
from app.errors import NotFoundError
from app.params import as_id

ADMIN_ROLE = "Admin"
SUPERVISOR_ROLE = "Supervisor"

T = TypeVar("T")


class OfficeOwned:
    """Mixin for rows that belong to one office (indexed ``office_id``)."""

    @declared_attr
    def office_id(cls) -> Mapped[int]:  # noqa: N805 - SQLAlchemy declared_attr
        return mapped_column(ForeignKey("org_office.id"), index=True, nullable=False)

    @declared_attr
    def office(cls):  # noqa: N805
        # Imported here, not by name: the model must resolve whatever the import order.
        from app.offices.models import Office

        return relationship(Office, lazy="joined")


def role_names(user: Any) -> set[str]:
    return {role.name for role in getattr(user, "roles", None) or ()}


def is_admin(user: Any) -> bool:
    return ADMIN_ROLE in role_names(user)


def _office_tree(session: Session) -> dict[int | None, list[int]]:
    from app.offices.models import Office

    children: dict[int | None, list[int]] = {}
    for office_id, parent_id in session.execute(select(Office.id, Office.parent_id)):
        children.setdefault(parent_id, []).append(office_id)
    return children


def descendants(session: Session, office_id: int) -> list[int]:
    """The office and every office under it, depth first."""
    tree = _office_tree(session)
    found, stack = [], [office_id]
    while stack:
        current = stack.pop()
        found.append(current)
        stack.extend(tree.get(current, ()))
    return found


def visible_office_ids(user: Any, session: Session | None = None) -> list[int] | None:
    """Offices whose rows ``user`` may see; ``None`` means every office (Admin).

    Staff see their own office; Supervisors also every office under it; a user
    without an office (a citizen, the anonymous user) sees none.  Cached per request.
    """
    if user is None or not getattr(user, "is_authenticated", False):
        return []
    cache_key = "_saoy_visible_offices"
    if has_request_context() and getattr(g, "user", None) is user:
        cached = getattr(g, cache_key, False)
        if cached is not False:
            return cached
    if is_admin(user):
        ids = None
    elif not getattr(user, "office_id", None):
        ids = []
    elif SUPERVISOR_ROLE in role_names(user):
        ids = descendants(session or current_app.appbuilder.session, user.office_id)
    else:
        ids = [user.office_id]
    if has_request_context() and getattr(g, "user", None) is user:
        setattr(g, cache_key, ids)
    return ids


def current_user() -> Any:
    return getattr(g, "user", None)


class OfficeScopeFilter(BaseFilter):
    """FAB base filter: rows of the offices the current user may see."""

    name = "Office scope"
    arg_name = "office_scope"

    def apply(self, query, value):  # value unused: scope comes from the user
        ids = visible_office_ids(current_user())
        if ids is None:
            return query
        return query.filter(self.model.office_id.in_(ids))


class OfficeIdScopeFilter(OfficeScopeFilter):
    """The same scope for the Office table itself (its own id is the office)."""

    def apply(self, query, value):
        ids = visible_office_ids(current_user())
        if ids is None:
            return query
        return query.filter(self.model.id.in_(ids))


OFFICE_SCOPE = [["office_id", OfficeScopeFilter, None]]


class Scoped(Generic[T]):
    """Scoped lookups for services and custom pages: ``scoped(s, user, M).get_or_404(pk)``."""

    def __init__(self, session: Session, user: Any, model: type[T]):
        self.session, self.user, self.model = session, user, model

    def select(self):
        stmt = select(self.model)
        ids = visible_office_ids(self.user, self.session)
        if ids is not None:
            stmt = stmt.where(self.model.office_id.in_(ids))
        return stmt

    def get(self, pk: Any) -> T | None:
        pk = as_id(pk)
        if pk is None:
            return None
        return self.session.scalars(self.select().where(self.model.id == pk)).first()

    def get_or_404(self, pk: Any) -> T:
        """The row, or ``NotFoundError`` (the one 404 answer: page or JSON, decided once)."""
        item = self.get(pk)
        if item is None:
            raise NotFoundError()
        return item

    def all(self, *where) -> list[T]:
        return list(self.session.scalars(self.select().where(*where)))


def scoped(session: Session, user: Any, model: type[T]) -> Scoped[T]:
    return Scoped(session, user, model)


def staff_office_id(user: Any) -> int:
    """The office a new row takes: the acting user's own.  Never a form field."""
    office_id = getattr(user, "office_id", None)
    if not office_id:
        raise PermissionError(_l("Your account does not belong to an office."))
    return office_id


def attribute_path(item: Any, dotted: str) -> Any:
    """``office.name`` → item.office.name (None-safe), for exports."""
    value = item
    for part in dotted.split("."):
        value = getattr(value, part, None) if value is not None else None
    return value() if callable(value) else value


class ScopedModelView(ServiceFormViewMixin, ModelView):
    """ModelView whose every door — actions and the exports included — applies the office
    scope, and whose writes go through the model's service (its ``Datamodel``), which
    gives new rows the user's office.  Page size is capped (FAB does not cap ``psize_`` on
    web lists).  A user who sees several offices gets an office column and filter (the
    filter offers only their offices); coded values show their labels (``app.labels``),
    in the list, the filter choices and the exports."""

    base_filters = OFFICE_SCOPE
    add_exclude_columns = edit_exclude_columns = ["office"]
    page_size = 25
    max_page_size = 100
    list_template = "saoy/list.html"
    export_columns: list[str] | None = None  # default: list_columns
    office_column = "office"

    def __init__(self, **kwargs):
        self._prepare_office_and_labels()
        # An export is the list itself (same scope, same filters): who may see the list
        # may export it, in either format.
        self.method_permission_name = {"export_xlsx": "list", "export_csv": "list",
                                       **(self.method_permission_name or {})}
        super().__init__(**kwargs)

    def _prepare_office_and_labels(self) -> None:
        self.label_columns = {self.office_column: _l("Office"), **(self.label_columns or {})}
        if self._has_office() and self.search_columns and \
                self.office_column not in self.search_columns:
            self.search_columns = [*self.search_columns, self.office_column]
        self.search_form_query_rel_fields = {**self._scoped_choices(),
                                             **(self.search_form_query_rel_fields or {})}

    def _scoped_choices(self) -> dict[str, list]:
        """A filter's choices of offices, staff, …: only those of the user's offices."""
        choices = {}
        for column in self.search_columns or []:
            if not self.datamodel.is_relation(column):
                continue
            related = self.datamodel.get_related_model(column)
            if getattr(related, "__tablename__", None) == "org_office":
                choices[column] = [["id", OfficeIdScopeFilter, None]]
            elif hasattr(related, "office_id"):
                choices[column] = [["office_id", OfficeScopeFilter, None]]
        return choices

    def _has_office(self) -> bool:
        return self.datamodel.is_relation(self.office_column)

    def sees_several_offices(self) -> bool:
        ids = visible_office_ids(current_user())
        return ids is None or len(ids) > 1

    def shown_columns(self, columns: list[str]) -> list[str]:
        """``columns`` with the office second when the user sees several offices, and
        without it when they see one (it would always be theirs)."""
        if not self._has_office():
            return list(columns)
        rest = [c for c in columns if c != self.office_column]
        if self.sees_several_offices():
            return [rest[0], self.office_column, *rest[1:]]
        return rest

    def render_template(self, template, **kwargs):
        kwargs.setdefault("view", self)
        return super().render_template(template, **kwargs)

    def _get_list_widget(self, filters, actions=None, order_column="", order_direction="",
                         page=None, page_size=None, widgets=None, **kwargs):
        """FAB's list widget with the columns this user should see."""
        if page_size and int(page_size) > self.max_page_size:
            page_size = self.max_page_size
        widgets = widgets or {}
        page_size = page_size or self.page_size
        if not order_column and self.base_order:
            order_column, order_direction = self.base_order
        count, items = self.datamodel.query(
            filters.get_joined_filters(self._base_filters), order_column, order_direction,
            page=page, page_size=page_size)
        columns = self.shown_columns(self.list_columns)
        widgets["list"] = self.list_widget(
            label_columns=self.label_columns, include_columns=columns,
            value_columns=self.datamodel.get_values(items, columns),
            order_columns=self.order_columns, formatters_columns=self.formatters_columns,
            page=page, page_size=page_size, count=count,
            pks=[self._serialize_pk_if_composite(pk) for pk in self.datamodel.get_keys(items)],
            actions=actions or self.actions, filters=filters,
            modelview_name=self.__class__.__name__, **kwargs)
        return widgets

    def _get_search_widget(self, form=None, exclude_cols=None, widgets=None):
        exclude_cols = list(exclude_cols or [])
        if not self.sees_several_offices():
            exclude_cols.append(self.office_column)
        return super()._get_search_widget(form=form, exclude_cols=exclude_cols,
                                          widgets=widgets)

    def filtered_query(self):
        """The list's query: office scope + the search filters in the request, ordered."""
        filters = self.datamodel.get_filters(self.search_columns)  # per request (FAB #2366)
        get_filter_args(filters)
        order_column, order_direction = self.base_order or ("", "")
        query = self.datamodel.session.query(self.datamodel.obj)
        return self.datamodel.apply_all(
            query, filters.get_joined_filters(self._base_filters), order_column, order_direction
        )

    def export_table(self) -> tuple[list[str], list[str]]:
        """(columns, headers) of the export: what the list shows, the office included."""
        columns = self.shown_columns(self.export_columns or self.list_columns)
        return columns, [str(self.label_columns.get(c, c)) for c in columns]

    def export_rows(self, columns: list[str]):
        for item in self.filtered_query().yield_per(500):
            yield [attribute_path(item, column) for column in columns]

    def export_count(self) -> int:
        return self.filtered_query().order_by(None).count()

    @expose("/export.xlsx")
    @has_access
    def export_xlsx(self):
        """Excel export of exactly what the list shows (same scope, same filters)."""
        return self._export("xlsx")

    @expose("/export.csv")
    @has_access
    def export_csv(self):
        """CSV (UTF-8 with BOM, so Excel reads Vietnamese) of what the list shows."""
        return self._export("csv")

    def _export(self, fmt: str):
        """Small exports stream at once; long ones become a background export with a
        progress page and a download link (``app.export_jobs``)."""
        from app import export_jobs
        from app.exports import csv_response, xlsx_response

        if self.export_count() > current_app.config["EXPORT_INLINE_ROWS"]:
            return redirect(export_jobs.progress_url(export_jobs.queue_export(self, fmt)))
        columns, headers = self.export_table()
        rows, name = self.export_rows(columns), f"{self.route_base.strip('/')}.{fmt}"
        if fmt == "csv":
            return csv_response(name, headers, rows)
        return xlsx_response(name, str(self.list_title), headers, rows)

    def _scoped_items(self, pks: Iterable[str]) -> list[Any]:
        items = []
        for pk in pks:
            item = self.datamodel.get(self._deserialize_pk_if_composite(pk), self._base_filters)
            if item is None:
                raise NotFoundError()
            items.append(item)
        return items

    @expose("/action/<string:name>/<pk>", methods=["GET", "POST"])
    def action(self, name: str, pk: str):
        if not self.is_get_mutation_allowed():
            flash(str(_l("Access is Denied")), "danger")
            return redirect(self.get_redirect())
        (item,) = self._scoped_items([pk])
        return self._permitted_action(name).func(item)

    @expose("/action_post", methods=["POST"])
    def action_post(self):
        action = self._permitted_action(request.form.get("action", ""))
        return action.func(self._scoped_items(request.form.getlist("rowid")))

    def _permitted_action(self, name: str):
        action = self.actions.get(name)
        if action is None:
            raise NotFoundError()
        if not self.appbuilder.sm.has_access(
            self.get_action_permission_name(name), self.class_permission_name
        ):
            abort(403)
        return action


class ScopedModelRestApi(DomainErrorResponses, ModelRestApi):
    """ModelRestApi with the office scope on get, put, delete and list; writes go through
    the model's service like the web views'."""

    base_filters = OFFICE_SCOPE
    max_page_size = 100
