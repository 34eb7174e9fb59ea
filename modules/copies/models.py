"""Copy requests (hồ sơ chứng thực bản sao): one original, its scan and its path through
the workflow.  Only ``modules.copies.workflow`` changes ``state``; ``version`` makes a
second click (or a concurrent one) fail instead of applying an event twice."""
from __future__ import annotations

import datetime as dt
import enum

from flask_appbuilder import Model
from flask_babel import lazy_gettext as _l
from sqlalchemy import (
    Boolean,
    CheckConstraint,
    Date,
    DateTime,
    Enum,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.citizens.models import Citizen
from app.labels import code_labels, labelled
from app.offices.models import DocumentType
from app.ownership import OfficeOwned, Owner
from app.timeutil import format_datetime, utcnow
from app.users import StaffUser


class State(str, enum.Enum):
    draft = "draft"
    awaiting_signature = "awaiting_signature"
    signed = "signed"
    awaiting_seal = "awaiting_seal"
    sealed = "sealed"
    delivered = "delivered"
    returned = "returned"
    cancelled = "cancelled"


STATE_LABELS = labelled({
    State.draft: _l("Draft"), State.awaiting_signature: _l("Awaiting signature"),
    State.signed: _l("Signed"), State.awaiting_seal: _l("Awaiting seal"),
    State.sealed: _l("Sealed"), State.delivered: _l("Delivered"),
    State.returned: _l("Returned"), State.cancelled: _l("Cancelled"),
})
code_labels({"CopyRequest": _l("Copy request"), "copy_created": _l("Received"),
             "copy_edited": _l("Edited"), "copy_fee_paid": _l("Fee paid"),
             "copy_sign_requested": _l("Sent to the signing agent"),
             "copy_submit": _l("Submit for signature"), "copy_sign": _l("Sign digitally"),
             "copy_return": _l("Return"), "copy_forward": _l("Forward for numbering and seal"),
             "copy_seal": _l("Assign number and seal"),
             "copy_deliver": _l("Complete and deliver the e-certified copy"),
             "copy_cancel": _l("Cancel request"), "copy_resume": _l("Continue processing")})
OPEN_STATES = (State.draft, State.awaiting_signature, State.signed, State.awaiting_seal,
               State.sealed, State.returned)
#: What the requester is told: a leader's return goes back to the officer (a new scan, or
#: a refusal decided by the officer), so to the citizen it is still being processed.
CITIZEN_STATE_LABELS = {
    **STATE_LABELS, State.draft: _l("Being processed"), State.returned: _l("Being processed"),
    State.cancelled: _l("Not certified"),
}


class CopyRequest(OfficeOwned, Model):
    __tablename__ = "copy_request"
    #: Staff see their office's; a citizen their own, once their account is verified (an
    #: unverified account may not be that person's).
    __owner__ = Owner(office="office_id", citizen="citizen_id", verified_citizen=True)
    __table_args__ = (
        Index("ix_copy_request_office_state", "office_id", "state"),
        # The lists' order and the dashboard's periods.
        Index("ix_copy_request_office_received", "office_id", "received_at"),
        CheckConstraint("copies >= 1", name="ck_copy_request_copies"),
        CheckConstraint("pages >= 1", name="ck_copy_request_pages"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    state: Mapped[State] = mapped_column(
        Enum(State, name="copy_state", native_enum=False, length=24), nullable=False,
        default=State.draft)
    version: Mapped[int] = mapped_column(Integer, nullable=False, default=1)
    # Requester: a citizen account, or (no DVCQG account) an e-mail address.
    citizen_id: Mapped[int | None] = mapped_column(ForeignKey("citizen_account.id"))
    requester_name: Mapped[str | None] = mapped_column(String(255))
    requester_identity: Mapped[str | None] = mapped_column(String(16), index=True)
    requester_email: Mapped[str | None] = mapped_column(String(320))
    requester_phone: Mapped[str | None] = mapped_column(String(16))
    appointment_id: Mapped[int | None] = mapped_column(ForeignKey("appt_appointment.id"))
    # The original and its scan.
    document_type_id: Mapped[int] = mapped_column(ForeignKey("org_document_type.id"),
                                                  nullable=False)
    copies: Mapped[int] = mapped_column(Integer, nullable=False, default=1)
    pages: Mapped[int] = mapped_column(Integer, nullable=False)
    scan_dpi: Mapped[int | None] = mapped_column(Integer)
    scan_filename: Mapped[str | None] = mapped_column(String(255))
    note: Mapped[str | None] = mapped_column(Text)
    document_id: Mapped[int] = mapped_column(ForeignKey("sign_document.id"), nullable=False)
    # Fee (đồng) and time limit.
    fee: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    fee_paid: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False)
    receipt_number: Mapped[str | None] = mapped_column(String(64))
    paid_at: Mapped[dt.datetime | None] = mapped_column(DateTime, index=True)
    received_at: Mapped[dt.datetime] = mapped_column(DateTime, nullable=False, default=utcnow,
                                                     index=True)
    due_at: Mapped[dt.datetime] = mapped_column(DateTime, nullable=False, index=True)
    # Numbering and delivery.
    register_entry_id: Mapped[int | None] = mapped_column(ForeignKey("reg_entry.id"))
    number: Mapped[str | None] = mapped_column(String(32), index=True)
    book: Mapped[str | None] = mapped_column(String(64))
    delivered_at: Mapped[dt.datetime | None] = mapped_column(DateTime, index=True)
    delivered_to: Mapped[str | None] = mapped_column(String(320))
    reason: Mapped[str | None] = mapped_column(Text)  # last return / cancel reason
    #: The last return: when, and on which Decree 23 ground (1–6; 0: a reason of its own).
    returned_at: Mapped[dt.datetime | None] = mapped_column(DateTime, index=True)
    return_ground: Mapped[int | None] = mapped_column(Integer)
    # Who did what.
    created_by_id: Mapped[int] = mapped_column(ForeignKey("ab_user.id"), nullable=False)
    signed_by_id: Mapped[int | None] = mapped_column(ForeignKey("ab_user.id"))
    sealed_by_id: Mapped[int | None] = mapped_column(ForeignKey("ab_user.id"))
    changed_at: Mapped[dt.datetime | None] = mapped_column(DateTime)

    citizen: Mapped[Citizen | None] = relationship(Citizen, lazy="joined")
    document_type: Mapped[DocumentType] = relationship(DocumentType, lazy="joined")
    created_by = relationship(StaffUser, foreign_keys=[created_by_id])
    signed_by = relationship(StaffUser, foreign_keys=[signed_by_id])
    sealed_by = relationship(StaffUser, foreign_keys=[sealed_by_id])
    document = relationship("SignedDocument", lazy="joined")

    @property
    def state_text(self) -> str:
        return str(STATE_LABELS[self.state])

    @property
    def overdue(self) -> bool:
        return self.state in OPEN_STATES and self.due_at < utcnow()

    @property
    def due_status(self) -> tuple[str, bool]:
        """(due time as shown, overdue?) for the lists' highlighted column: a request that is
        finished (delivered, cancelled) is due no more."""
        return (self.due_text if self.state in OPEN_STATES else "—"), self.overdue

    @property
    def citizen_state_text(self) -> str:
        return str(CITIZEN_STATE_LABELS[self.state])

    @property
    def due_text(self) -> str:
        return format_datetime(self.due_at)

    @property
    def received_text(self) -> str:
        return format_datetime(self.received_at)

    @property
    def next_step(self) -> tuple[int, State]:
        """(id, state): the queues' per-row button to the request's next action."""
        return self.id, self.state

    @property
    def file_name(self) -> str:
        """The certified copy's file name: what it is, its number and book, its office —
        two copies never share one (the number alone repeats every year and office)."""
        from app.vn import slug

        parts = ("ban-sao-chung-thuc", self.document_type and slug(self.document_type.name_vi),
                 self.number and f"so-{slug(self.number)}", self.book and
                 f"quyen-{slug(self.book)}", self.office and slug(self.office.code))
        return "-".join(p for p in parts if p) + ".pdf"

    @property
    def requester(self) -> str:
        return self.requester_name or self.requester_email or ""

    def __repr__(self) -> str:
        return f"#{self.id} {self.requester}"


class FeeSchedule(Model):
    """The fee rates in force from a date (today Thông tư 226/2016/TT-BTC): a request pays
    the rates in force on the day it was received, whatever is decided later.  Without any
    row the configured rates apply (``FEE_*``)."""

    __tablename__ = "copy_fee_schedule"
    __table_args__ = (CheckConstraint("first_pages >= 0 AND first_page_rate >= 0 AND "
                                      "later_page_rate >= 0 AND cap_per_copy >= 0",
                                      name="ck_copy_fee_schedule_amounts"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    effective_from: Mapped[dt.date] = mapped_column(Date, unique=True, nullable=False)
    first_pages: Mapped[int] = mapped_column(Integer, nullable=False)
    first_page_rate: Mapped[int] = mapped_column(Integer, nullable=False)
    later_page_rate: Mapped[int] = mapped_column(Integer, nullable=False)
    cap_per_copy: Mapped[int] = mapped_column(Integer, nullable=False)
    #: The text that sets these rates, e.g. "Thông tư 226/2016/TT-BTC".
    legal_basis: Mapped[str] = mapped_column(String(255), nullable=False)

    def __repr__(self) -> str:
        return f"{self.legal_basis} ({self.effective_from:%d/%m/%Y})"
