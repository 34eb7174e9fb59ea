"""The scope rule on FAB's doors: a thin web layer over ``app.scope``.

``OfficeScopeFilter`` puts ``scope(user, Model)`` on every FAB query of a view (list,
show, edit, delete, REST get/put/delete/list); ``ScopedModelView`` re-fetches the rows
of ``@action`` and ``action_post`` through it (FAB does not) and exports exactly its
list.  Nothing here decides who sees what: ``app.scope`` does.
"""
from __future__ import annotations

from typing import Any

from flask import current_app, g, redirect
from flask_appbuilder import ModelView, expose, has_access
from flask_appbuilder.api import ModelRestApi
from flask_appbuilder.models.filters import BaseFilter
from flask_appbuilder.urltools import get_filter_args
from flask_babel import lazy_gettext as _l

from app import export_jobs
from app.crud import DomainErrorResponses, ServiceFormViewMixin
from app.exports import Money, csv_response, xlsx_response
from app.i18n import format_money
from app.ownership import owner_of
from app.scope import scope, visible_office_ids
from app.web import current_user


class OfficeScopeFilter(BaseFilter):
    """FAB base filter: the rows of the model the current user may see (``app.scope``)."""

    name = "Office scope"
    arg_name = "office_scope"

    def apply(self, query, value):  # value unused: the scope comes from the user
        return query.filter(scope(current_user(), self.model))


OFFICE_SCOPE = [["id", OfficeScopeFilter, None]]


def shown_office_ids() -> list[int] | None:
    """The offices the current user sees (None: every one), once per request and user."""
    user = current_user()
    cached = g.get("saoy_offices")
    if cached is None or cached[0] is not user:
        cached = g.saoy_offices = (user, visible_office_ids(current_app.appbuilder.session,
                                                            user))
    return cached[1]


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
        """A filter's choices of offices, staff, …: only those the user may see."""
        return {column: OFFICE_SCOPE for column in self.search_columns or []
                if self.datamodel.is_relation(column)
                and owner_of(self.datamodel.get_related_model(column)) is not None}

    def _has_office(self) -> bool:
        return self.datamodel.is_relation(self.office_column)

    def sees_several_offices(self) -> bool:
        ids = shown_office_ids()
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
        """The list's rows; a column the list shows as money is money in the workbook."""
        money = [(self.formatters_columns or {}).get(c) is format_money for c in columns]
        for item in self.filtered_query().yield_per(500):
            yield [Money(value) if is_money and isinstance(value, int) else value
                   for value, is_money in zip((attribute_path(item, column)
                                               for column in columns), money, strict=True)]

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
        if self.export_count() > current_app.config["EXPORT_INLINE_ROWS"]:
            return redirect(export_jobs.progress_url(export_jobs.queue_export(self, fmt)))
        columns, headers = self.export_table()
        rows, name = self.export_rows(columns), f"{self.route_base.strip('/')}.{fmt}"
        if fmt == "csv":
            return csv_response(name, headers, rows)
        return xlsx_response(name, str(self.list_title), headers, rows)


class ScopedModelRestApi(DomainErrorResponses, ModelRestApi):
    """ModelRestApi with the office scope on get, put, delete and list; writes go through
    the model's service like the web views'."""

    base_filters = OFFICE_SCOPE
    max_page_size = 100
