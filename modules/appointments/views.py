"""Appointments: citizen portal pages, office views (settings, plan, closures, pending
list with process / reschedule / cancel) and the REST API.  Thin: services decide."""
from __future__ import annotations

import datetime as dt
from collections import OrderedDict

from flask import Response, current_app, flash, redirect, request, url_for
from flask_appbuilder import BaseView, expose, has_access
from flask_appbuilder.actions import action
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_wtf.csrf import generate_csrf
from markupsafe import Markup
from wtforms import SelectField, validators

from app.crud import Datamodel
from app.errors import DomainError, NotFoundError
from app.extensions import db
from app.modules import handlers
from app.offices.services import offered_document_types
from app.scoping import ScopedModelView
from app.transactions import atomic
from app.web import current_user
from modules.appointments import services, workflow
from modules.appointments.models import (
    STATUS_LABELS,
    WEEKDAYS,
    Appointment,
    AppointmentSettings,
    Closure,
    WorkingSession,
)

LABELS = {
    "code": _l("Appointment code"), "full_name": _l("Full name"),
    "identity_number": _l("Identity number"), "phone": _l("Mobile number"),
    "document_type": _l("Document type"), "documents": _l("Documents"),
    "start": _l("Time"), "local_start_text": _l("Time"), "status": _l("Status"),
    "status_text": _l("Status"), "reason": _l("Reason"), "note": _l("Note"),
    "office": _l("Office"), "created_at": _l("Booked at"), "reschedule_count": _l("Reschedules"),
    "slot_minutes": _l("Slot length (minutes)"), "capacity": _l("Places per slot"),
    "horizon_days": _l("Booking horizon (days)"), "min_notice_hours": _l("Minimum notice (hours)"),
    "cancel_cutoff_hours": _l("Online cancellation until (hours before)"),
    "what_to_bring": _l("What to bring"), "weekday": _l("Weekday"),
    "weekday_name": _l("Weekday"), "start_time": _l("From"), "end_time": _l("To"),
    "name": _l("Name"), "date_from": _l("From date"), "date_to": _l("To date"),
    "row_actions": _l("Actions"),
}


def _fail(exc: DomainError):
    flash(exc.message, "danger")


def slot_groups(slots: list[services.FreeSlot]) -> OrderedDict[dt.date, list]:
    days: OrderedDict[dt.date, list] = OrderedDict()
    for slot in slots:
        days.setdefault(slot.local.date(), []).append(slot)
    return days


def free_slots_for(office_id: int, days: int = 62) -> list[services.FreeSlot]:
    today = services.today_vn()
    return services.availability(db.session, office_id, today, today + dt.timedelta(days=days))


# --- citizen portal ---------------------------------------------------------------------

class AppointmentPortalView(BaseView):
    """Book, list, see and cancel one's own appointments (mobile-friendly pages)."""

    route_base = "/appointments"
    default_view = "mine"
    scoped_model = Appointment  # a citizen's own (the scope matrix knocks on the ids)

    @expose("/book", methods=["GET"])
    @has_access
    def book(self):
        office_id = request.args.get("office_id", type=int)
        if not office_id:
            query = request.args.get("q", "")
            return self.render_template("appointments/book_office.html", query=query,
                                        offices=services.bookable_offices(db.session, query))
        try:
            office = services.bookable_office(db.session, office_id)
        except DomainError as exc:
            _fail(exc)
            return redirect(url_for(".book"))
        days = slot_groups(free_slots_for(office.id))
        chosen_day = request.args.get("date") or (next(iter(days)).isoformat() if days else "")
        try:
            day = dt.date.fromisoformat(chosen_day) if chosen_day else None
        except ValueError:
            day = None
        return self.render_template(
            "appointments/book.html", office=office, days=days, day=day,
            times=days.get(day, []), types=offered_document_types(db.session, office.id),
            document_type_id=request.args.get("document_type_id", type=int),
            documents=request.args.get("documents", 1, type=int))

    @expose("/book", methods=["POST"])
    @has_access
    def book_post(self):
        form = request.form
        try:
            with atomic(db.session):
                appointment = services.book(
                    db.session, current_user(), office_id=form.get("office_id"),
                    document_type_id=form.get("document_type_id"), start=form.get("start"),
                    documents=form.get("documents", 1), note=form.get("note"))
        except DomainError as exc:
            _fail(exc)
            return redirect(url_for(".book", office_id=form.get("office_id"),
                                    document_type_id=form.get("document_type_id"),
                                    documents=form.get("documents")))
        return redirect(url_for(".detail", pk=appointment.id, booked=1))

    @expose("/mine")
    @has_access
    def mine(self):
        rows = services.listed(db.session, current_user(), newest_first=True)
        return self.render_template("appointments/mine.html", appointments=rows,
                                    status_labels=STATUS_LABELS)

    @expose("/<int:pk>")
    @has_access
    def detail(self, pk: int):
        appointment = self._own(pk)
        settings = services.settings_for(db.session, appointment.office_id)
        return self.render_template(
            "appointments/detail.html", a=appointment, status_labels=STATUS_LABELS,
            booked=request.args.get("booked"),
            what_to_bring=settings.what_to_bring or services.default_what_to_bring())

    @expose("/<int:pk>/cancel", methods=["POST"])
    @has_access
    def cancel(self, pk: int):
        try:
            with atomic(db.session):
                workflow.cancel(db.session, current_user(), pk, request.form.get("reason"))
            flash(_("The appointment was cancelled."), "success")
        except NotFoundError:
            raise
        except DomainError as exc:
            _fail(exc)
        return redirect(url_for(".detail", pk=pk))

    @expose("/<int:pk>/calendar.ics")
    @has_access
    def ics(self, pk: int):
        appointment = self._own(pk)
        body = services.ics(appointment, current_app.config["BASE_URL"])
        return Response(body, mimetype="text/calendar", headers={
            "Content-Disposition": f"attachment; filename=lich-hen-{appointment.code}.ics"})

    @staticmethod
    def _own(pk: int) -> Appointment:
        return services.get_visible(db.session, current_user(), pk)


# --- office side ------------------------------------------------------------------------

class AppointmentSettingsView(ScopedModelView):
    datamodel = Datamodel(AppointmentSettings,
                          service=services.SettingsService("appointment_settings"))
    list_title = _l("Appointment settings")
    add_title = edit_title = show_title = _l("Appointment settings")
    label_columns = LABELS
    list_columns = ["office", "slot_minutes", "capacity", "horizon_days", "min_notice_hours",
                    "cancel_cutoff_hours"]
    add_columns = edit_columns = ["slot_minutes", "capacity", "horizon_days",
                                  "min_notice_hours", "cancel_cutoff_hours", "what_to_bring"]
    show_columns = list_columns + ["what_to_bring"]
    description_columns = {
        "capacity": _l("How many citizens can be received in one slot (counters × staff)."),
        "what_to_bring": _l("Shown on the booking confirmation and in the calendar file."),
    }


class WorkingSessionView(ScopedModelView):
    datamodel = Datamodel(WorkingSession, service=services.WorkingSessionService("working_session"))
    list_title = _l("Weekly working plan")
    add_title = edit_title = show_title = _l("Working session")
    label_columns = LABELS
    list_columns = ["weekday_name", "start_time", "end_time"]
    add_columns = edit_columns = ["weekday", "start_time", "end_time"]
    base_order = ("weekday", "asc")
    description_columns = {"start_time": _l("HH:MM, for example 07:30")}
    #: Days by name: typing 5 for "thứ 5" configured Saturday (0 was Monday).
    add_form_extra_fields = edit_form_extra_fields = {"weekday": SelectField(
        _l("Weekday"), choices=list(enumerate(WEEKDAYS)), coerce=int,
        validators=[validators.InputRequired()])}
    validators_columns = {}


class ClosureView(ScopedModelView):
    datamodel = Datamodel(Closure, service=services.ClosureService("closure"))
    list_title = _l("Closures and holidays")
    add_title = edit_title = show_title = _l("Closure")
    label_columns = LABELS
    list_columns = ["name", "date_from", "date_to"]
    add_columns = edit_columns = ["name", "date_from", "date_to"]
    base_order = ("date_from", "desc")

    def post_add(self, item):
        self._report(item)

    def post_update(self, item):
        self._report(item)

    def _report(self, item):
        affected = services.affected_by_closure(db.session, item.office_id, item.date_from,
                                                item.date_to)
        if affected:
            codes = ", ".join(f"{a.code} ({a.local_start()})" for a in affected[:20])
            flash(_("%(count)s booked appointments fall on these days and stay booked until "
                    "you reschedule them: %(codes)s", count=len(affected), codes=codes),
                  "warning")


def row_buttons(pk: int, active: bool) -> Markup:
    """Xử lý / Dời lịch hẹn / Hủy right in the row (the workflow still checks everything)."""
    if not active:
        return Markup("")
    base = "/pendingappointments"
    return Markup(
        '<form method="post" action="{}" style="display:inline">'
        '<input type="hidden" name="csrf_token" value="{}">'
        '<button class="btn btn-xs btn-primary" type="submit">{}</button></form> '
        '<a class="btn btn-xs btn-default" href="{}">{}</a> '
        '<a class="btn btn-xs btn-danger" href="{}">{}</a>').format(
        f"{base}/action/process/{pk}", generate_csrf(), _("Process"),
        f"{base}/change/reschedule/{pk}", _("Reschedule appointment"),
        f"{base}/change/cancel/{pk}", _("Cancel"))


class PendingAppointmentView(ScopedModelView):
    """Lịch hẹn chờ duyệt: the office's appointments; process, reschedule, cancel."""

    route_base = "/pendingappointments"
    datamodel = Datamodel(Appointment)
    base_permissions = ["can_list", "can_show", "can_change"]
    list_title = _l("Appointments pending")
    show_title = _l("Appointment")
    label_columns = LABELS
    list_columns = ["code", "local_start_text", "full_name", "identity_number",
                    "document_type", "documents", "status_text", "row_actions"]
    formatters_columns = {"row_actions": lambda value: row_buttons(*value)}
    export_columns = ["code", "local_start_text", "full_name", "identity_number", "phone",
                      "document_type", "documents", "status_text", "reason"]
    show_columns = ["code", "local_start_text", "full_name", "identity_number", "phone",
                    "document_type", "documents", "status_text", "reason", "note",
                    "reschedule_count", "created_at", "office"]
    search_columns = ["code", "identity_number", "full_name", "start", "status",
                      "document_type"]
    order_columns = ["code", "start", "full_name"]
    base_order = ("start", "asc")

    # The buttons are in each active row (row_buttons): a processed, cancelled or missed
    # appointment offers none, so FAB draws no action icons of its own (single=False).
    @action("process", _l("Process"), "", "fa-check", multiple=False, single=False)
    def process(self, item):
        for handler in handlers("appointments.process"):
            target = handler(item)
            if target:
                return redirect(target)
        try:
            with atomic(db.session):
                workflow.mark_processed(db.session, current_user(), item)
            flash(_("Appointment %(code)s marked as processed.", code=item.code),
                  "success")
        except DomainError as exc:
            _fail(exc)
        return redirect(self.get_redirect())

    @action("reschedule", _l("Reschedule appointment"), "", "fa-calendar", multiple=False,
            single=False)
    def reschedule(self, item):
        return redirect(url_for(".change", pk=item.id, what="reschedule"))

    @action("cancel", _l("Cancel"), "", "fa-times", multiple=False, single=False)
    def cancel(self, item):
        return redirect(url_for(".change", pk=item.id, what="cancel"))

    @expose("/change/<what>/<int:pk>", methods=["GET", "POST"])
    @has_access
    def change(self, what: str, pk: int):
        """The reschedule / cancel form (reason required; new slot for reschedule)."""
        if what not in ("reschedule", "cancel") or not self.appbuilder.sm.has_access(
                what, self.class_permission_name):
            return redirect(url_for(".list"))
        appointment = services.get_visible(db.session, current_user(), pk)
        if request.method == "POST":
            try:
                if what == "reschedule":
                    with atomic(db.session):
                        workflow.reschedule(db.session, current_user(), pk,
                                            request.form.get("start"),
                                            request.form.get("reason"))
                    flash(_("Appointment %(code)s moved to %(time)s; the citizen is notified.",
                            code=appointment.code, time=appointment.local_start()),
                          "success")
                else:
                    with atomic(db.session):
                        workflow.cancel(db.session, current_user(), pk,
                                        request.form.get("reason"))
                    flash(_("Appointment %(code)s cancelled; the citizen is notified.",
                            code=appointment.code), "success")
                return redirect(url_for(".list"))
            except DomainError as exc:
                _fail(exc)
        days = slot_groups(free_slots_for(appointment.office_id)) if what == "reschedule" \
            else {}
        return self.render_template("appointments/staff_change.html", a=appointment,
                                    what=what, days=days, reason=request.form.get("reason", ""))
