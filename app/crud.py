"""FAB's generic add/edit/delete, made to go the one way every change goes.

``Datamodel`` is FAB's data interface whose writes call a ``RecordService``
(``app.records``) inside one unit of work: the service validates, writes and records
the audit event, and the commit takes all of it or nothing.  Without a service it is
read-only: nothing can write around a model's own rules through FAB's generic doors.
Errors are plain translated sentences (FAB would flash ``str(exception)``, i.e. SQL).
``ServiceFormViewMixin`` re-shows a refused form with what was typed instead of FAB's
redirect to the list.
"""
from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any

from flask import abort, current_app, flash, jsonify, redirect, request, url_for
from flask_appbuilder import ModelView, expose, has_access
from flask_appbuilder.api import BaseApi
from flask_appbuilder.exceptions import DatabaseException
from flask_appbuilder.fields import EnumField, QuerySelectField, QuerySelectMultipleField
from flask_appbuilder.models.sqla.interface import SQLAInterface
from flask_appbuilder.urltools import (
    get_filter_args,
    get_order_args,
    get_page_args,
    get_page_size_args,
)
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_babel.speaklater import LazyString
from sqlalchemy.exc import IntegrityError, SQLAlchemyError
from wtforms import SelectField, validators
from wtforms.fields.core import UnboundField
from wtforms.widgets import Select

from app.dates import VietnameseDateField
from app.errors import DomainError, NotFoundError
from app.labels import choices, display, has_labels, label
from app.params import as_id, check_record, json_object
from app.records import READ_ONLY, RecordService
from app.transactions import atomic
from app.web import current_user

log = logging.getLogger(__name__)


class FriendlyDatabaseError(DomainError):
    """str() is a sentence for the user; the cause is in the log."""


class EstimatedCount(int):
    """A row count the planner estimated: pages are cut from it as from any count, and a
    person reads it as approximate."""

    def __str__(self) -> str:
        from app.i18n import format_number

        return _("about %(count)s", count=format_number(int(self)))


class Datamodel(SQLAInterface):
    """FAB's data interface whose every write is the model's service in one unit of work."""

    def __init__(self, obj, session=None, service: RecordService = READ_ONLY):
        super().__init__(obj, session)
        self.service = service

    def _write(self, operation, item) -> None:
        try:
            with atomic(self.session):
                operation(self.session, current_user(), item)
        except (SQLAlchemyError, DatabaseException) as exc:
            log.warning("database write refused: %s", exc)
            if isinstance(exc, IntegrityError) or isinstance(exc.__cause__, IntegrityError):
                raise FriendlyDatabaseError(_(
                    "This record conflicts with existing data (a duplicate code or name, or "
                    "records that still depend on it).")) from None
            raise FriendlyDatabaseError(_("The record could not be saved. Please try again."))\
                from None

    def query_count(self, query, filters=None, select_columns=None) -> int:
        """Exact up to ``LIST_EXACT_COUNT`` rows (counting stops there); beyond it, on
        PostgreSQL, the planner's estimate, shown as "about N": the province's list of a
        million requests spent 80 of its 85 ms of SQL counting them for the pager."""
        counted = self._apply_inner_all(query, filters, select_columns=select_columns,
                                        aliases_mapping={}).order_by(None)
        limit = current_app.config.get("LIST_EXACT_COUNT") or 0
        if not limit or self.session.get_bind().dialect.name != "postgresql":
            return counted.count()
        exact = counted.limit(limit + 1).count()
        if exact <= limit:
            return exact
        statement = counted.statement.compile(dialect=self.session.get_bind().dialect)
        plan = self.session.connection().exec_driver_sql(
            f"EXPLAIN (FORMAT JSON) {statement}", statement.params).scalar()
        return EstimatedCount(max(int(plan[0]["Plan"]["Plan Rows"]), exact))

    def get(self, id, filters=None, *args, **kwargs):
        """A pk that cannot be one (text, 10^30) finds nothing instead of failing in SQL."""
        if self.get_pk_name() and as_id(id) is None:
            return None
        return super().get(id, filters, *args, **kwargs)

    def add(self, item, commit: bool = True) -> None:
        self._write(self.service.create, item)

    def edit(self, item, commit: bool = True) -> None:
        self._write(self.service.update, item)

    def delete(self, item, commit: bool = True) -> None:
        self._write(self.service.delete, item)

    def delete_all(self, items) -> None:
        for item in items:
            self.delete(item)


#: The empty choice of an optional related record.
NO_CHOICE = _l("— none —")


def _shown_text(value: Any) -> str:
    return str(display(value))


def refusal_text(exc: Exception) -> str:
    return getattr(exc, "message", None) or str(exc)


class PlainSelect(Select):
    """The browser's own select (FAB dresses every select in Select2, whose text box has no
    name, whose search box no label, whose list holds a stray span, and whose placeholder
    is 2.8:1 grey — axe found each): a native select is named by its label, read by every
    screen reader and driven by the keyboard as is."""

    def __call__(self, field, **kwargs):
        kwargs["class"] = "form-control"
        if self.multiple:
            kwargs.setdefault("size", min(8, max(3, len(list(field.iter_choices())))))
        if "name_" in kwargs:  # FAB's search form names its filter fields so
            field.name = kwargs.pop("name_")
        return super().__call__(field, **kwargs)


def _labelled_enum_field(enum_class, text: Any, *, required: bool):
    """FAB's enum select with the labels (it shows the codes)."""

    class LabelledEnumField(EnumField):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            self.choices = choices(enum_class) if required else \
                [("", NO_CHOICE), *choices(enum_class)]
            coerce = self.coerce  # an optional coded column left empty is None
            self.coerce = lambda value: None if value in ("", None) else coerce(value)

        def pre_validate(self, form):
            if required or self.data is not None:
                super().pre_validate(form)

    return LabelledEnumField(
        enum_class=enum_class, enums=list(enum_class.__members__), label=text,
        validators=[validators.DataRequired() if required else validators.Optional()],
        widget=PlainSelect())


class ReadableViewMixin:
    """Every column of a list or a record page shows what a person reads (``display``:
    no "None", "True", codes or ISO dates), unless the view formats it itself; a coded
    column (an enum: FAB hands its formatter the bare code) shows its label, and its
    search filter offers the labels."""

    def __init__(self, **kwargs):
        self._label_search_choices()
        super().__init__(**kwargs)
        columns = set(self.list_columns or []) | set(self.show_columns or [])
        shown = {c: self._labelled(c) or display for c in columns}
        self.formatters_columns = {**shown, **(self.formatters_columns or {})}
        self._readable_choices()

    def _readable_choices(self) -> None:
        """Related records in a form's choices as a person reads them (roles by their
        Vietnamese names, not "Clerk"), and the empty choice said, not FAB's "__None"."""
        for form in (getattr(self, name, None) for name in ("add_form", "edit_form",
                                                            "search_form")):
            for unbound in (vars(form).values() if form is not None else ()):
                if isinstance(unbound, UnboundField) and issubclass(
                        unbound.field_class, QuerySelectField | QuerySelectMultipleField):
                    unbound.kwargs.setdefault("get_label", _shown_text)
                    unbound.kwargs["blank_text"] = NO_CHOICE
                    unbound.kwargs["widget"] = PlainSelect(multiple=issubclass(
                        unbound.field_class, QuerySelectMultipleField))

    def _enum_class(self, column: str):
        if not self.datamodel.is_enum(column):
            return None
        found = getattr(self.datamodel.list_columns[column].type, "enum_class", None)
        return found if found is not None and has_labels(found) else None

    def _labelled(self, column: str):
        enum_class = self._enum_class(column)
        if enum_class is None:
            return None

        def show(value):
            if isinstance(value, str):
                try:
                    value = enum_class(value)
                except ValueError:
                    return value
            return label(value)

        return show

    def _label_search_choices(self) -> None:
        extra = dict(self.search_form_extra_fields or {})
        for column in self.search_columns or []:
            enum_class = self._enum_class(column)
            if enum_class is not None:
                extra.setdefault(column, SelectField(
                    (self.label_columns or {}).get(column, column),
                    choices=choices(enum_class), widget=PlainSelect()))
        self.search_form_extra_fields = extra
        for name in ("add_form_extra_fields", "edit_form_extra_fields"):
            fields = dict(getattr(self, name, None) or {})
            for column in self.datamodel.get_columns_list():
                if column not in fields:
                    field = self._readable_field(column)
                    if field is not None:
                        fields[column] = field
            setattr(self, name, fields)

    def _readable_field(self, column: str):
        """The form field a person can fill in: labels for a coded column, dd/mm/yyyy for
        a date; None where FAB's own is fine."""
        text = (self.label_columns or {}).get(column, column)
        enum_class = self._enum_class(column)
        if enum_class is not None:
            return _labelled_enum_field(enum_class, text,
                                        required=not self.datamodel.is_nullable(column))
        if self.datamodel.is_date(column):
            required = not self.datamodel.is_nullable(column)
            return VietnameseDateField(
                text, description=(self.description_columns or {}).get(column, ""),
                validators=[validators.DataRequired() if required else validators.Optional(),
                            *(self.validators_columns or {}).get(column, [])])
        return None


class ServiceFormViewMixin(ReadableViewMixin):
    """For ModelViews on a ``Datamodel``: a refused add or edit shows the form again with
    what was typed and the reason (FAB redirects to the list and loses the input); after
    an action, a save or a (refused) delete the user is back on the list they came from,
    its filters kept (FAB follows its page history, which may be another page)."""

    def get_redirect(self) -> str:
        here = url_for(f"{type(self).__name__}.list")
        referrer = request.referrer or ""
        path = "/" + referrer.split("//", 1)[-1].partition("/")[2]
        return path if referrer and path.startswith(here) else here

    def _add(self):
        get_filter_args(self._filters, disallow_if_not_in_search=False)
        exclude_cols = self._filters.get_relation_cols()
        form = self.add_form.refresh()
        if request.method == "POST":
            self._fill_form_exclude_cols(exclude_cols, form)
            if form.validate():
                self.process_form(form, True)
                item = self.datamodel.obj()
                try:
                    form.populate_obj(item)
                    self.pre_add(item)
                    self.datamodel.add(item)
                except (DomainError, PermissionError) as exc:
                    self._forget(item)
                    flash(refusal_text(exc), "danger")
                    return self._get_add_widget(form=form, exclude_cols=exclude_cols)
                self.post_add(item)
                flash(self.add_row_message, "success")
                return None
            return self._get_add_widget(form=form, exclude_cols=exclude_cols)
        self.update_redirect()
        return self._get_add_widget(form=form, exclude_cols=exclude_cols)

    def _edit(self, pk):
        pages, page_sizes, orders = get_page_args(), get_page_size_args(), get_order_args()
        get_filter_args(self._filters, disallow_if_not_in_search=False)
        exclude_cols = self._filters.get_relation_cols()
        item = self.datamodel.get(pk, self._base_filters)
        if not item:
            raise NotFoundError()
        pk = self.datamodel.get_pk_value(item)
        if request.method == "POST":
            form = self.edit_form.refresh(request.form)
            self._fill_form_exclude_cols(exclude_cols, form)
            form._id = pk
            if form.validate():
                self.process_form(form, False)
                try:
                    form.populate_obj(item)
                    self.pre_update(item)
                    self.datamodel.edit(item)
                except (DomainError, PermissionError) as exc:
                    self.datamodel.session.expire(item)  # the refused edits are not kept
                    flash(refusal_text(exc), "danger")
                else:
                    self.post_update(item)
                    flash(self.edit_row_message, "success")
                    return None
        else:
            form = self.edit_form.refresh(obj=item)
            self.prefill_form(form, pk)
            self.update_redirect()
        widgets = self._get_edit_widget(form=form, exclude_cols=exclude_cols)
        return self._get_related_views_widgets(item, filters={}, orders=orders, pages=pages,
                                               page_sizes=page_sizes, widgets=widgets)

    def _delete(self, pk):
        item = self.datamodel.get(pk, self._base_filters)
        if not item:
            raise NotFoundError()
        try:
            self.pre_delete(item)
            self.datamodel.delete(item)
        except (DomainError, PermissionError) as exc:
            flash(refusal_text(exc), "danger")
        else:
            self.post_delete(item)
            flash(self.delete_row_message, "success")
        self.update_redirect()

    # --- FAB's doors that take ids, each one through the view's base filters (the scope):
    # FAB's own ``action`` and ``action_post`` load rows unfiltered.  Mutations are POSTs
    # only (FAB's pages post them; a GET is 405).

    @expose("/action/<string:name>/<pk>", methods=["POST"])
    def action(self, name: str, pk: str):
        (item,) = self._rows_in_scope([pk])
        return self._permitted_action(name).func(item)

    @expose("/action_post", methods=["POST"])
    def action_post(self):
        """FAB posts the ticked rows here; an action made for one row (``multiple=False``)
        gets that row, and more or fewer than one is a 400 (FAB handed it a list: 500)."""
        action = self._permitted_action(request.form.get("action", ""))
        rows = self._rows_in_scope(request.form.getlist("rowid"))
        if action.multiple:
            return action.func(rows)
        if len(rows) != 1:
            raise DomainError(_("Choose exactly one row for this action."), 400)
        return action.func(rows[0])

    @expose("/delete/<pk>", methods=["POST"])
    @has_access
    def delete(self, pk):
        self._delete(self._deserialize_pk_if_composite(pk))
        return redirect(self.get_redirect())

    def _rows_in_scope(self, pks: Iterable[str]) -> list[Any]:
        """Each row through the base filters, or 404 for the whole request."""
        items = []
        for pk in pks:
            item = self.datamodel.get(self._deserialize_pk_if_composite(pk), self._base_filters)
            if item is None:
                raise NotFoundError()
            items.append(item)
        return items

    def _permitted_action(self, name: str):
        action = self.actions.get(name)
        if action is None:
            raise NotFoundError()
        if not self.appbuilder.sm.has_access(
                self.get_action_permission_name(name), self.class_permission_name):
            abort(403)
        return action

    def _forget(self, item) -> None:
        """A refused new row must not be flushed later by anything in this request."""
        if item in self.datamodel.session:
            self.datamodel.session.expunge(item)


class DomainErrorAnswers:
    """FAB's ``@safe`` turns every exception into a 500; a broken business rule
    (DomainError) is the client's 4xx with the rule's message, as JSON, instead."""

    def answer(self, call, *args):
        try:
            return call(*args)
        except DomainError as exc:
            return jsonify(message=exc.message, **exc.details), exc.status
        except PermissionError as exc:
            if exc.errno is not None:
                raise  # the disk said no, not a rule: the app answers 503 without the path
            return jsonify(message=str(exc)), 403


class DomainErrorResponses(DomainErrorAnswers):
    """For ModelRestApi: its write endpoints answer broken rules with 4xx, and their bodies
    are checked against the model's columns before FAB's schema sees them."""

    def post_headless(self):
        return self.answer(self._checked, super().post_headless, self.add_columns)

    def put_headless(self, pk):
        return self.answer(self._checked, lambda: super(DomainErrorResponses, self)
                           .put_headless(pk), self.edit_columns)

    def _checked(self, call, columns):
        check_record(self.datamodel.obj, columns, json_object())
        return call()

    def delete_headless(self, pk):
        return self.answer(super().delete_headless, pk)

    def _get_field_info(self, field, filter_rel_field, page=None, page_size=None):
        """FAB sends a field with no description (or label) through gettext(""), which
        answers the catalogue's header ("Project-Id-Version: …"): say nothing instead."""
        info = super()._get_field_info(field, filter_rel_field, page=page, page_size=page_size)
        for key, given in (("label", self.label_columns), ("description",
                                                          self.description_columns)):
            info[key] = str(given.get(field.name) or "")
        return info


class ServiceApi(DomainErrorAnswers, BaseApi):
    """A BaseApi whose endpoints each call one service through ``answer``."""

    #: The model whose ids the routes take (``<int:pk>``): the scope matrix knocks on them.
    scoped_model: type | None = None

    @staticmethod
    def json(status: int, payload: dict):
        """``BaseApi.response`` takes ``code`` as the status: our payloads may have a code."""
        return jsonify(payload), status


class DatedRuleView(ServiceFormViewMixin, ModelView):
    """A rule kept as versions by the day each takes effect (fee rates, attestation
    wording; ``DatedRuleService`` keeps a version in force as it is): newest first, with
    the two columns every version has."""

    base_order = ("effective_from", "desc")
    DATED_LABELS = {"effective_from": _l("In force from"), "legal_basis": _l("Legal basis")}

    @staticmethod
    def effective_note(without_any: Any) -> LazyString:
        """The date's help: when a new version may start, then what applies without one."""
        return LazyString(lambda: f"{_IN_FORCE} {without_any}")


_IN_FORCE = _l("From tomorrow at the earliest; a version in force is kept as it is.")
