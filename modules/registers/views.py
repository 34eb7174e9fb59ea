"""Registers: FAB list/add/edit/delete/show with entries, close, book export; REST API."""
from __future__ import annotations

from flask import current_app, flash, redirect
from flask_appbuilder.actions import action
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l

from app.crud import Datamodel
from app.exports import Money, xlsx_response
from app.extensions import db
from app.scope import staff_office_id
from app.scoping import ScopedModelView
from app.transactions import atomic
from app.web import current_user
from modules.registers import services
from modules.registers.models import Register, RegisterEntry

LABELS = {
    "name": _l("Register name"), "book_number": _l("Book number"),
    "type_symbol": _l("Type symbol"), "year": _l("Year"), "start_number": _l("Start number"),
    "next_number": _l("Next number"), "last_number": _l("Last number issued"),
    "issued_count": _l("Numbers issued"), "opening_date": _l("Opening date"),
    "closing_date": _l("Closing date"), "status": _l("Status"), "created_by": _l("Created by"),
    "closed_by": _l("Closed by"), "closed_at": _l("Closed at"), "total_entries": _l("Total"),
    "book_label": _l("Book"), "office": _l("Office"), "register": _l("Register"),
    "number": _l("Certification number"), "issued_on": _l("Date"),
    "requester_name": _l("Requester"), "requester_identity": _l("Identity number"),
    "document_type": _l("Document type"), "pages": _l("Pages"), "copies": _l("Copies"),
    "signer_name": _l("Signer"), "fee": _l("Fee (đồng)"), "notes": _l("Notes"),
    "void_reason": _l("Void reason"), "issued_by": _l("Issued by"),
}

BOOK_FEE = _l("Fee (đồng)")
BOOK_HEADERS = [_l("Certification number"), _l("Date of certification"),
                _l("Requester's full name"), _l("Identity number"),
                _l("Name of the original document"), _l("Pages"), _l("Copies"),
                _l("Signer"), BOOK_FEE, _l("Notes")]


def register_book_response(register: Register):
    """The register book as .xlsx: cover block, then one line per number."""
    cover = [
        (_("Certifying office"), register.office.name),
        (_("Book number"), register.book_label),
        (_("Opening date"), register.opening_date),
        (_("Closing date"), register.closing_date),
        (_("Numbers issued"), register.issued_count),
    ]
    fee = BOOK_HEADERS.index(BOOK_FEE)
    rows = ([*row[:fee], None if row[fee] is None else Money(row[fee]), *row[fee + 1:]]
            for row in services.book_rows(db.session, register))
    return xlsx_response(
        f"so-chung-thuc-{register.year}-{register.id}.xlsx",
        _("CERTIFICATION REGISTER — %(name)s", name=register.name),
        [str(h) for h in BOOK_HEADERS], rows, cover=cover,
        widths=[12, 14, 28, 16, 30, 8, 8, 24, 12, 30],
    )


class RegisterEntryView(ScopedModelView):
    """The certified copies entered in a register (read-only: numbers are never edited)."""

    datamodel = Datamodel(RegisterEntry)
    base_permissions = ["can_list", "can_show"]
    list_title = _l("Entries")
    show_title = _l("Entry")
    label_columns = LABELS
    list_columns = ["number", "issued_on", "requester_name", "requester_identity",
                    "document_type", "pages", "copies", "signer_name", "fee", "status"]
    show_columns = list_columns + ["void_reason", "notes", "register", "issued_by"]
    search_columns = ["number", "requester_name", "requester_identity", "status", "issued_on"]
    base_order = ("number", "asc")


class RegisterView(ScopedModelView):
    datamodel = Datamodel(Register, service=services.RegisterService("register"))
    list_title = _l("Certification registers")
    show_title = _l("Certification register")
    add_title = _l("Open a register")
    edit_title = _l("Edit register")
    label_columns = LABELS
    list_columns = ["name", "book_number", "type_symbol", "year", "start_number", "last_number",
                    "status", "opening_date", "closing_date"]
    export_columns = ["name", "book_number", "type_symbol", "year", "start_number",
                      "last_number", "issued_count", "status", "opening_date", "closing_date",
                      "total_entries"]
    search_columns = ["name", "book_number", "year", "status"]
    add_columns = ["name", "book_number", "type_symbol", "year", "start_number",
                   "opening_date", "closing_date"]
    edit_columns = add_columns
    show_columns = ["name", "book_number", "type_symbol", "year", "start_number",
                    "last_number", "status", "opening_date", "closing_date", "created_by",
                    "closed_by", "closed_at", "total_entries", "office"]
    order_columns = ["name", "year", "opening_date", "status"]
    base_order = ("opening_date", "desc")
    related_views = [RegisterEntryView]
    description_columns = {
        "start_number": _l("A new book opened mid-year continues the year's sequence."),
        "type_symbol": _l("E-copies are numbered apart from paper copies, e.g. SCTĐT/BS."),
    }

    def _get_add_widget(self, form, *args, **kwargs):
        """Suggest this year's values: the start continues the last book's numbers."""
        if not form.is_submitted():
            today = services.today_vn()
            symbol = current_app.config["REGISTER_TYPE_SYMBOL"]
            office_id = staff_office_id(current_user())
            form.year.data = form.year.data or today.year
            form.type_symbol.data = form.type_symbol.data or symbol
            form.opening_date.data = form.opening_date.data or today
            # never the column's default 1: mid-year, a new book goes on from the last one
            form.start_number.data = services.suggested_start_number(
                db.session, office_id, today.year, symbol)
        return super()._get_add_widget(form, *args, **kwargs)

    @action("close_register", _l("Close register"),
            _l("Close this register? No number can be issued from it afterwards."),
            "fa-lock", multiple=False)
    def close_register(self, item):
        with atomic(db.session):
            register = services.close_register(db.session, current_user(), item.id)
        flash(_("Register closed with %(total)s numbers.", total=register.total_entries),
              "success")
        return redirect(self.get_redirect())

    @action("export_book", _l("Export report"), "", "fa-file-excel-o", multiple=False)
    def export_book(self, item):
        return register_book_response(item)
