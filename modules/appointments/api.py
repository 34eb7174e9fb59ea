"""``/api/v1/appointment/``: free slots (public), booking, a citizen's or an office's
appointments, cancel and reschedule — the same services and table as the pages."""
from __future__ import annotations

import datetime as dt

from flask import request
from flask_appbuilder import expose
from flask_appbuilder.api import permission_name, protect
from flask_babel import gettext as _

from app import params
from app.crud import ServiceApi
from app.errors import DomainError
from app.extensions import db
from app.offices.services import offered_document_types
from app.timeutil import to_local
from app.transactions import atomic
from app.web import current_user
from modules.appointments import services, workflow
from modules.appointments.models import Appointment, AppointmentStatus


def appointment_json(a: Appointment) -> dict:
    return {
        "id": a.id, "code": a.code, "office": a.office.name,
        "office_id": a.office_id, "start": to_local(a.start).isoformat(),
        "end": to_local(a.end).isoformat(), "status": a.status.value,
        "document_type_id": a.document_type_id, "document_type": a.document_type.name_vi,
        "documents": a.documents, "full_name": a.full_name,
        "identity_number": a.identity_number, "reason": a.reason,
    }


#: Days of free slots one question may ask for (a quarter).
MAX_SLOT_DAYS = 92


class AppointmentApi(ServiceApi):
    resource_name = "appointment"
    scoped_model = Appointment
    openapi_spec_tag = "Appointments"
    allow_browser_login = True

    @expose("/slots", methods=["GET"])
    def slots(self):
        """Free slots of an office with remaining places (public).
        ---
        get:
          parameters:
          - {in: query, name: office_id, required: true, schema: {type: integer}}
          - {in: query, name: date_from, schema: {type: string, format: date}}
          - {in: query, name: date_to, schema: {type: string, format: date}}
          - {in: query, name: document_type_id, schema: {type: integer}}
          responses:
            200: {description: "{office_id, slots: [{start, remaining}]}, times +07:00"}
            404: {description: Unknown office}
            422: {description: Bad dates or a document type the office does not offer}
        """
        return self.answer(self._slots)

    def _slots(self):
        office = services.bookable_office(db.session, request.args.get("office_id"))
        today = services.today_vn()
        date_from = params.query_date("date_from", today)
        date_to = params.query_date("date_to", date_from + dt.timedelta(days=30))
        if date_to < date_from or (date_to - date_from).days > MAX_SLOT_DAYS:
            raise DomainError(_("Ask for at most %(n)s days, with date_to after date_from.",
                                n=MAX_SLOT_DAYS))
        type_id = params.query_int("document_type_id")
        types = {t.id for t in offered_document_types(db.session, office.id)}
        if type_id is not None and type_id not in types:
            raise DomainError(_("This office does not certify this document type."))
        free = services.availability(db.session, office.id, date_from, date_to)
        return self.response(200, office_id=office.id, slots=[
            {"start": s.local.isoformat(), "remaining": s.remaining} for s in free])

    @expose("/", methods=["GET"])
    @protect()
    @permission_name("get")
    def get_list(self):
        """Appointments: a citizen's own, staff their office's.
        ---
        get:
          parameters:
          - {in: query, name: status, schema: {type: string}}
          - {in: query, name: date, schema: {type: string, format: date}}
          - {in: query, name: page, schema: {type: integer}}
          responses:
            200: {description: "{count, result: [appointment]}"}
        """
        return self.answer(self._list)

    def _list(self):
        status = request.args.get("status")
        try:
            status = AppointmentStatus(status) if status else None
        except ValueError:
            raise DomainError(_("Unknown status %(value)s.", value=status)) from None
        rows = services.listed(db.session, current_user(), status=status,
                               day=params.query_date("date"), page=params.query_page())
        return self.response(200, count=len(rows), result=[appointment_json(a) for a in rows])

    @expose("/<int:pk>", methods=["GET"])
    @protect()
    @permission_name("get")
    def get(self, pk: int):
        """One appointment (404 outside your scope).
        ---
        get:
          parameters:
          - {in: path, name: pk, required: true, schema: {type: integer}}
          responses:
            200: {description: The appointment}
            404: {description: Not found}
        """
        return self.answer(lambda: self.json(200, appointment_json(
            services.get_visible(db.session, current_user(), pk))))

    @expose("/", methods=["POST"])
    @protect()
    @permission_name("post")
    def post(self):
        """Book a slot (citizen).
        ---
        post:
          requestBody:
            required: true
            content:
              application/json:
                schema:
                  type: object
                  required: [office_id, document_type_id, start]
                  properties:
                    office_id: {type: integer}
                    document_type_id: {type: integer}
                    start: {type: string, description: "ISO time; no zone = Vietnam time"}
                    documents: {type: integer, default: 1}
          responses:
            201: {description: "{id, code, start, office}"}
            409: {description: The slot is full, or too many active appointments}
            422: {description: Invalid data}
        """
        def book():
            body = params.json_object()
            with atomic(db.session):
                a = services.book(db.session, current_user(), office_id=body.get("office_id"),
                                  document_type_id=body.get("document_type_id"),
                                  start=body.get("start"), documents=body.get("documents", 1),
                                  note=body.get("note"))
            return self.json(201, {"id": a.id, "code": a.code,
                                    "start": to_local(a.start).isoformat(),
                                    "office": a.office.name})

        return self.answer(book)

    @expose("/<int:pk>/cancel", methods=["POST"])
    @protect()
    @permission_name("cancel")
    def cancel(self, pk: int):
        """Cancel with a reason (citizen: until the cutoff; staff: any active one).
        ---
        post:
          parameters:
          - {in: path, name: pk, required: true, schema: {type: integer}}
          requestBody:
            content:
              application/json:
                schema: {type: object, properties: {reason: {type: string}}}
          responses:
            200: {description: The cancelled appointment}
            404: {description: Not found}
            409: {description: Already cancelled / processed, or past the cutoff}
        """
        def cancel():
            body = params.json_object()
            with atomic(db.session):
                a = workflow.cancel(db.session, current_user(), pk, body.get("reason"))
            return self.json(200, appointment_json(a))

        return self.answer(cancel)

    @expose("/<int:pk>/reschedule", methods=["POST"])
    @protect()
    @permission_name("reschedule")
    def reschedule(self, pk: int):
        """Move to another free slot with a reason (staff); the citizen is notified.
        ---
        post:
          parameters:
          - {in: path, name: pk, required: true, schema: {type: integer}}
          requestBody:
            content:
              application/json:
                schema:
                  type: object
                  properties: {start: {type: string}, reason: {type: string}}
          responses:
            200: {description: The rescheduled appointment}
            404: {description: Not found}
            409: {description: The new slot is full, or the appointment is no longer active}
        """
        def reschedule():
            body = params.json_object()
            with atomic(db.session):
                a = workflow.reschedule(db.session, current_user(), pk, body.get("start"),
                                        body.get("reason"))
            return self.json(200, appointment_json(a))

        return self.answer(reschedule)
