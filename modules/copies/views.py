"""Copy requests on the web: intake, the request page with its workflow buttons, the
queues (awaiting signature, awaiting seal, returned), the slip, and the citizen's
"Giấy tờ của tôi".  Thin: ``services`` and ``workflow`` decide everything."""
from __future__ import annotations

from flask import Response, current_app, flash, jsonify, redirect, request, send_file, url_for
from flask_appbuilder import BaseView, expose, has_access
from flask_appbuilder.actions import action
from flask_appbuilder.models.sqla.filters import FilterInFunction
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from markupsafe import Markup
from werkzeug.exceptions import RequestEntityTooLarge

from app import params
from app.crud import Datamodel, DatedRuleView
from app.errors import DomainError, NotFoundError
from app.extensions import db
from app.i18n import format_money
from app.offices.services import offered_document_types
from app.params import large_body
from app.records import DatedRuleService
from app.scope import role_names
from app.scoping import OFFICE_SCOPE, ScopedModelView
from app.transactions import atomic
from app.web import checks_csrf_itself, current_user, identity_lookups
from modules.appointments import services as appointments
from modules.copies import services, workflow
from modules.copies.forms import (
    BATCH_MAX,
    check_csrf,
    params_from,
    read_upload,
    too_large_message,
)
from modules.copies.models import OPEN_STATES, STATE_LABELS, CopyRequest, FeeSchedule, State
from modules.registers.services import open_registers
from modules.signing import pdf as signing_pdf
from modules.signing import services as signing

LABELS = {
    "id": _l("No."), "state": _l("Status"), "state_text": _l("Status"),
    "requester": _l("Requester"), "requester_name": _l("Requester"),
    "requester_identity": _l("Identity number"), "requester_email": _l("E-mail"),
    "document_type": _l("Document type"), "copies": _l("Copies"), "pages": _l("Pages"),
    "fee": _l("Fee (đồng)"), "fee_paid": _l("Fee paid"), "received_at": _l("Received at"),
    "received_text": _l("Received at"), "due_at": _l("Due"), "due_text": _l("Due"),
    "due_status": _l("Due"), "next_step": _l("Next step"),
    "number": _l("Certification number"), "book": _l("Book"), "created_by": _l("Officer"),
    "signed_by": _l("Signer"), "sealed_by": _l("Clerk"), "reason": _l("Reason"),
    "note": _l("Note"), "office": _l("Office"),
}


HISTORY_EVENTS = {
    "copy_created": _l("Received"), "copy_edited": _l("Edited"),
    "copy_fee_paid": _l("Fee paid"), "copy_sign_requested": _l("Sent to the signing agent"),
    **{t.audit_event or f"copy_{event.value}": t.label
       for event, t in workflow.TRANSITIONS.items() if t.offered and event not in (
           workflow.Event.pay, workflow.Event.edit, workflow.Event.request_signature)},
}


def state_filter(*states: State):
    return [["state", FilterInFunction, lambda: list(states)]]


class CopyListBase(ScopedModelView):
    """The lists: filters, search, sorting, capped page size, Excel export; overdue rows
    are highlighted; a row opens the request page."""

    datamodel = Datamodel(CopyRequest)
    base_permissions = ["can_list"]
    list_template = "copies/list.html"
    label_columns = LABELS
    list_columns = ["id", "received_text", "requester", "requester_identity", "document_type",
                    "pages", "copies", "fee", "state_text", "due_status", "number"]
    export_columns = ["id", "received_text", "requester", "requester_identity", "document_type",
                      "pages", "copies", "fee", "state_text", "due_text", "number", "book",
                      "fee_paid", "requester_email", "note", "reason"]
    formatters_columns = {
        "number": lambda number: number or "",
        "fee": format_money,
        "id": lambda pk: Markup('<a href="{}">#{}</a>').format(f"/copies/request/{pk}", pk),
        "due_status": lambda due: Markup('<span class="label label-danger overdue">{}</span>')
        .format(due[0]) if due[1] else due[0],
    }
    search_columns = ["requester_name", "requester_identity", "number", "state", "received_at",
                      "document_type", "created_by", "signed_by", "sealed_by", "fee_paid"]
    order_columns = ["id", "received_at", "due_at", "requester_name", "number"]
    base_order = ("received_at", "desc")

    def _bulk(self, items, event: workflow.Event):
        done, failed = 0, []
        for item in items:  # each request is its own unit: one refusal stops no other
            try:
                with atomic(db.session):
                    workflow.apply(db.session, current_user(), item.id, event)
                done += 1
            except DomainError as exc:
                failed.append(f"#{item.id}: {exc.message}")
        if done:
            flash(_("%(action)s: %(n)s requests done.", action=workflow.TRANSITIONS[event].label,
                    n=done), "success")
        for message in failed:
            flash(message, "danger")
        return redirect(self.get_redirect())


class CopyRequestView(CopyListBase):
    """All requests of the office, plus the request page and intake."""

    route_base = "/copies"
    base_permissions = ["can_list", "can_intake", "can_intake_post", "can_intake_account",
                        "can_detail", "can_do", "can_verify_requester",
                        "can_edit_draft", "can_slip", "can_document", "can_bulk_sign",
                        "can_page_image"]
    #: Sending the counter check's code is part of the check it serves.
    method_permission_name = {"intake_account_code": "intake_account",
                              "counter_code": "verify_requester"}
    list_title = _l("Certification requests")

    @expose("/intake", methods=["GET"])
    @has_access
    def intake(self):
        """Thêm mới bản sao từ bản chính; from an appointment, its data is filled in."""
        return self._intake_form(self._from_appointment())

    def _from_appointment(self) -> dict:
        """The intake form's values, filled in from ``?appointment=`` when there is one
        (kept in the form's address, so a refused upload still has them)."""
        values: dict = {"copies": 1}
        appointment_id = params.as_id(request.args.get("appointment"))
        if appointment_id:
            a = appointments.get_visible(db.session, current_user(), appointment_id)
            values.update(identity_number=a.identity_number, document_type_id=a.document_type_id,
                          copies=a.documents, appointment_code=a.code, note=a.note or "",
                          appointment=a.id)
        return values

    def _typed_again(self, form) -> dict:
        """A refused intake's form: what was typed, over what the appointment filled in."""
        return {**self._from_appointment(), **form.to_dict()}

    def _intake_form(self, values, status=200):
        office_id = current_user().office_id
        return self.render_template(
            "copies/intake.html", values=values,
            types=offered_document_types(db.session, office_id) if office_id else [],
            max_mb=current_app.config["MAX_UPLOAD_MB"]), status

    @expose("/intake/account", methods=["GET"])
    @has_access
    def intake_account(self):
        """The account of one identity number, for the intake form's search step: exactly
        that number (never a search by prefix), its name, whether it is verified."""
        with identity_lookups(), atomic(db.session):  # limited per officer, audited
            found = services.account_summary(db.session, current_user(),
                                             request.args.get("identity_number"))
        return jsonify(found or {"found": False})

    @expose("/intake/account/code", methods=["POST"])
    @has_access
    def intake_account_code(self):
        """The counter check's one-time code, sent to the account found (JSON)."""
        try:
            with identity_lookups(), atomic(db.session):
                sent_to = services.send_code_for_identity(db.session, current_user(),
                                                          request.form.get("identity_number"))
        except DomainError as exc:
            return jsonify(message=exc.message), exc.status
        return jsonify(sent_to=sent_to, message=_(
            "Code sent to %(to)s: type the code the requester reads out.", to=sent_to))

    @expose("/intake", methods=["POST"])
    @has_access
    @large_body
    @checks_csrf_itself
    def intake_post(self):
        try:
            upload = read_upload()
            check_csrf()  # after the size limit is set: the body is parsed once, bounded
        except RequestEntityTooLarge:  # the fields after the file were never read
            flash(too_large_message(), "danger")
            return self._intake_form(self._from_appointment(), 413)
        form = request.form
        if upload is None:
            flash(_("Attach the scanned PDF of the original."), "danger")
            return self._intake_form(self._typed_again(form), 422)
        try:
            with atomic(db.session):  # received and submitted together, or neither
                copy, info = services.intake(
                    db.session, current_user(), upload=upload,
                    document_type_id=form.get("document_type_id"), copies=form.get("copies"),
                    requester=services.Requester(
                        identity_number=form.get("identity_number"),
                        no_account=bool(form.get("no_account")), email=form.get("email"),
                        name=form.get("name"), phone=form.get("phone"),
                        verify_identity=bool(form.get("verify_identity")),
                        counter_code=form.get("counter_code")),
                    note=form.get("note"), appointment_code=form.get("appointment_code"))
                workflow.apply(db.session, current_user(), copy.id, workflow.Event.submit)
        except NotFoundError:
            raise
        except DomainError as exc:
            flash(exc.message, "danger")
            return self._intake_form(self._typed_again(form), exc.status)
        self._scan_warning(info)
        flash(_("Request #%(id)s submitted for signature. Fee: %(fee)s.", id=copy.id,
                fee=format_money(copy.fee)), "success")
        return redirect(url_for(".detail", pk=copy.id))

    @staticmethod
    def _scan_warning(info):
        minimum = current_app.config["MIN_SCAN_DPI"]
        if info is not None and info.dpi is not None and info.dpi < minimum:
            flash(_("The scan is only about %(dpi)s dpi (at least %(min)s is recommended): "
                    "check that it is legible.", dpi=info.dpi, min=minimum), "warning")

    @expose("/request/<int:pk>")
    @has_access
    def detail(self, pk: int):
        copy = self._get(pk)
        events = workflow.allowed_events(copy, current_user())
        return self.render_template(
            "copies/detail.html", c=copy, events=events, transitions=workflow.TRANSITIONS,
            withheld=workflow.withheld_events(copy, current_user()),
            Event=workflow.Event, grounds=workflow.REFUSAL_GROUNDS,
            history=services.history(db.session, copy), state_labels=STATE_LABELS,
            history_events=HISTORY_EVENTS, states={s.value: label for s, label in
                                                   STATE_LABELS.items()},
            registers=open_registers(db.session, current_user())
            if workflow.Event.seal in events else [],
            seal_keys=signing.seal_keys(db.session, current_user(), copy.office_id)
            if workflow.Event.seal in events else [],
            leader_signing=signing.how_leader_signs(db.session, copy.office_id, current_user())
            if {workflow.Event.sign, workflow.Event.request_signature} & set(events) else None,
            waiting=signing.approval_waiting(db.session, current_user(), copy.document_id)
            if workflow.Event.request_signature in events else None,
            min_block=(signing_pdf.BLOCK_MIN_WIDTH, signing_pdf.BLOCK_MIN_HEIGHT),
            can_verify="Officer" in role_names(current_user()))

    @expose("/request/<int:pk>/do/<event>", methods=["POST"])
    @has_access
    def do(self, pk: int, event: str):
        """Every workflow button posts here; the workflow says yes or why not."""
        try:
            with signing.counting_wrong_codes(db.session, current_user()), atomic(db.session):
                copy = workflow.apply(db.session, current_user(), pk, event,
                                      params_from(request.form))
            flash(self._done_message(copy, workflow.parse_event(event)), "success")
            if event == workflow.Event.resume.value:
                return redirect(url_for(".edit_draft", pk=pk))
        except NotFoundError:
            raise
        except DomainError as exc:
            flash(exc.message, "danger")
        return redirect(url_for(".detail", pk=pk))

    @staticmethod
    def _done_message(copy: CopyRequest, event: workflow.Event) -> str:
        if event is workflow.Event.request_signature:
            if signing.approval_waiting(db.session, current_user(), copy.document_id):
                return _("Sent to your remote signing service: approve the signing in its "
                         "app on your phone.")
            return _("Prepared for your signing plugin.")
        if event is workflow.Event.seal:
            return _("Number %(number)s, book %(book)s: sealed.", number=copy.number,
                     book=copy.book)
        if event is workflow.Event.pay:
            return _("Fee marked as paid.")
        return _("%(action)s: done.", action=workflow.TRANSITIONS[event].label)

    @expose("/request/<int:pk>/verify-requester", methods=["POST"])
    @has_access
    def verify_requester(self, pk: int):
        """The officer compared the identity card presented with the requester's account,
        and typed the code the requester read out."""
        try:
            with atomic(db.session):
                services.verify_requester(db.session, current_user(), pk,
                                          request.form.get("counter_code"))
            flash(_("The account is verified: the copy will reach it."), "success")
        except NotFoundError:
            raise
        except DomainError as exc:
            flash(exc.message, "danger")
        return redirect(url_for(".detail", pk=pk))

    @expose("/request/<int:pk>/counter-code", methods=["POST"])
    @has_access
    def counter_code(self, pk: int):
        """Send the counter check's code to the requester's account."""
        try:
            with identity_lookups(), atomic(db.session):
                sent_to = services.send_code_for_request(db.session, current_user(), pk)
            flash(_("Code sent to %(to)s: type the code the requester reads out.", to=sent_to),
                  "info")
        except NotFoundError:
            raise
        except DomainError as exc:
            flash(exc.message, "danger")
        return redirect(url_for(".detail", pk=pk))

    @expose("/request/<int:pk>/edit", methods=["GET", "POST"])
    @has_access
    @large_body
    @checks_csrf_itself
    def edit_draft(self, pk: int):
        """Xử lý tiếp: change the scan, type, copies, note; then submit again."""
        copy = self._get(pk)
        if request.method == "POST":
            try:
                upload = read_upload()
                check_csrf()
                form = request.form
                with atomic(db.session):
                    copy, info = services.update_draft(
                        db.session, current_user(), pk, upload=upload,
                        document_type_id=form.get("document_type_id"),
                        copies=form.get("copies"), note=form.get("note"))
                    if form.get("submit"):
                        workflow.apply(db.session, current_user(), pk, workflow.Event.submit)
                self._scan_warning(info)
                if form.get("submit"):
                    flash(_("Request #%(id)s submitted for signature again.", id=pk), "success")
                    return redirect(url_for(".detail", pk=pk))
                flash(_("Changes saved."), "success")
            except RequestEntityTooLarge:
                flash(too_large_message(), "danger")
            except DomainError as exc:
                flash(exc.message, "danger")
        return self.render_template("copies/edit.html", c=copy,
                                    types=offered_document_types(db.session, copy.office_id),
                                    max_mb=current_app.config["MAX_UPLOAD_MB"])

    @expose("/request/<int:pk>/slip")
    @has_access
    def slip(self, pk: int):
        """Phiếu hẹn: printable return-date slip."""
        copy = self._get(pk)
        return self.render_template("copies/slip.html", c=copy,
                                    verify_url=signing.verify_url(copy.document.verify_code))

    @expose("/request/<int:pk>/document")
    @has_access
    def document(self, pk: int):
        """The current PDF (scan, signed or sealed), scoped like the request."""
        copy = self._get(pk)
        return send_file(signing.pdf_stream(copy.document), mimetype="application/pdf",
                         download_name=f"ho-so-{copy.id}.pdf")

    @expose("/request/<int:pk>/page/<int:page>.png")
    @has_access
    def page_image(self, pk: int, page: int):
        """One page of the current file, to place the attestation on it by clicking."""
        png = signing.page_png(self._get(pk).document, page)
        if png is None:
            raise NotFoundError()
        return Response(png, mimetype="image/png",
                        headers={"Cache-Control": "private, max-age=300"})

    @expose("/bulk-sign")
    @has_access
    def bulk_sign(self):
        """Sign several at once: one confirmation, each signed separately, progress shown."""
        ids = params.ids(request.args.get("ids"), "ids", max_count=BATCH_MAX)
        items = [c for c in (self._get_or_none(pk) for pk in ids) if c is not None]
        user = current_user()
        return self.render_template(
            "copies/bulk_sign.html", items=items,
            leader_signing=signing.how_leader_signs(db.session, user.office_id, user)
            if getattr(user, "office_id", None) else None)

    def _get(self, pk: int) -> CopyRequest:
        return workflow.get_visible(db.session, current_user(), pk)

    def _get_or_none(self, pk: int) -> CopyRequest | None:
        try:
            return workflow.get_visible(db.session, current_user(), pk)
        except NotFoundError:
            return None


#: What a queue's row button says: the next thing to do with the request.
NEXT_STEPS = {
    State.awaiting_signature: _l("Review and sign"),
    State.signed: _l("Forward for numbering and seal"),
    State.awaiting_seal: _l("Assign number and seal"),
    State.sealed: _l("Complete and deliver"),
    State.returned: _l("Continue or cancel"),
}


def _next_step_button(step: tuple[int, State]) -> Markup | str:
    pk, state = step
    label = NEXT_STEPS.get(state)
    return Markup('<a class="btn btn-primary btn-next-step" href="{}#actions">{}</a>').format(
        url_for("CopyRequestView.detail", pk=pk), label) if label else ""


class QueueBase(CopyListBase):
    """A role's queue: each row has its next step as a button (the bulk actions stay)."""

    list_columns = [*CopyListBase.list_columns, "next_step"]
    formatters_columns = {**CopyListBase.formatters_columns, "next_step": _next_step_button}


class AwaitingSignatureView(QueueBase):
    """Bản sao chờ ký (leaders): sign, return, forward."""

    route_base = "/copies-to-sign"
    base_filters = OFFICE_SCOPE + state_filter(State.awaiting_signature, State.signed)
    list_title = _l("Copies awaiting signature")
    base_order = ("received_at", "asc")

    @action("sign", _l("Sign digitally"), _l("Sign the selected requests?"), "fa-pencil")
    def sign(self, items):
        items = items if isinstance(items, list) else [items]
        return redirect(url_for("CopyRequestView.bulk_sign",
                                ids=",".join(str(i.id) for i in items)))

    @action("forward", _l("Forward for numbering and seal"),
            _l("Forward the selected signed requests to the clerk?"), "fa-share")
    def forward(self, items):
        return self._bulk(items if isinstance(items, list) else [items], workflow.Event.forward)


class AwaitingSealView(QueueBase):
    """Bản sao chờ đóng dấu (clerks): number and seal, then deliver."""

    route_base = "/copies-to-seal"
    base_filters = OFFICE_SCOPE + state_filter(State.awaiting_seal, State.sealed)
    list_title = _l("Copies awaiting seal")
    base_order = ("received_at", "asc")

    @action("deliver", _l("Complete and deliver the e-certified copy"),
            _l("Deliver the selected sealed copies to their requesters?"), "fa-send")
    def deliver(self, items):
        return self._bulk(items if isinstance(items, list) else [items], workflow.Event.deliver)


class ReturnedView(QueueBase):
    """Hồ sơ bị từ chối (officers): see the reason; continue or cancel."""

    route_base = "/copies-returned"
    base_filters = OFFICE_SCOPE + state_filter(State.returned)
    list_title = _l("Returned requests")
    list_columns = ["id", "received_text", "requester", "document_type", "reason", "due_status",
                    "next_step"]


class MyCopiesView(BaseView):
    """Giấy tờ của tôi: the citizen's certified copies and their requests' status."""

    route_base = "/mycopies"
    default_view = "index"
    scoped_model = CopyRequest  # a citizen's own (the scope matrix knocks on the ids)

    @expose("/")
    @has_access
    def index(self):
        requests_ = services.citizen_requests(db.session, current_user())
        by_state = lambda *states: [r for r in requests_ if r.state in states]  # noqa: E731
        return self.render_template(
            "copies/my_copies.html", delivered=by_state(State.delivered),
            pending=by_state(*OPEN_STATES), refused=by_state(State.cancelled))

    @expose("/<int:pk>")
    @has_access
    def detail(self, pk: int):
        copy = self._own(pk)
        return self.render_template("copies/my_copy.html", c=copy,
                                    verify_url=signing.verify_url(copy.document.verify_code))

    @expose("/<int:pk>/file")
    @has_access
    def file(self, pk: int):
        copy = self._own(pk)
        inline = request.args.get("view") == "1"
        return send_file(signing.pdf_stream(copy.document), mimetype="application/pdf",
                         as_attachment=not inline,
                         download_name=copy.file_name)

    @staticmethod
    def _own(pk: int) -> CopyRequest:
        """The citizen's own delivered copy (requests in progress show in the list)."""
        copy = services.citizen_request(db.session, current_user(), pk)
        if copy.state is not State.delivered or copy.delivered_to != "portal":
            raise NotFoundError()  # a copy sent by e-mail never opens here
        return copy


def intake_url_for(appointment) -> str | None:
    """"Xử lý" on a pending appointment opens the intake form, filled in."""
    return url_for("CopyRequestView.intake", appointment=appointment.id)


class FeeScheduleView(DatedRuleView):
    """System administrator: the fee rates by the date they take effect (a request pays
    those in force on the day it was received)."""

    datamodel = Datamodel(FeeSchedule, service=DatedRuleService("fee_schedule"))
    list_title = _l("Fee schedules")
    show_title = add_title = edit_title = _l("Fee schedule")
    label_columns = {
        **DatedRuleView.DATED_LABELS, "first_pages": _l("Pages at the first rate"),
        "first_page_rate": _l("First rate per page (đồng)"),
        "later_page_rate": _l("Rate per later page (đồng)"),
        "cap_per_copy": _l("Most per copy (đồng)"),
    }
    list_columns = ["effective_from", "first_pages", "first_page_rate", "later_page_rate",
                    "cap_per_copy", "legal_basis"]
    show_columns = add_columns = edit_columns = list_columns
    formatters_columns = {c: format_money for c in ("first_page_rate", "later_page_rate",
                                                    "cap_per_copy")}
    description_columns = {
        "effective_from": DatedRuleView.effective_note(_l(
            "Without any version the configured rates apply (Circular 226/2016/TT-BTC).")),
    }
