"""``/dashboard/``: figures and charts for the user's offices, and the statistics report
(.xlsx) — thin: the figures come from ``services``."""
from __future__ import annotations

from flask import request
from flask_appbuilder import BaseView, expose, has_access
from flask_babel import gettext as _

from app.exports import xlsx_response
from app.extensions import db
from app.timeutil import format_datetime, utcnow
from app.web import current_user
from modules.supervision import services


class DashboardView(BaseView):
    route_base = "/dashboard"
    default_view = "index"

    @expose("/")
    @has_access
    def index(self):
        choice = services.choose(db.session, current_user(), request.args)
        board = services.dashboard(db.session, current_user(), choice)
        return self.render_template("supervision/dashboard.html", board=board, choice=choice,
                                    args=request.args)

    @expose("/statistics.xlsx")
    @has_access
    def statistics(self):
        """The statistics report upward: per office, what the register books numbered."""
        choice = services.choose(db.session, current_user(), request.args)
        rows = services.statistics(db.session, current_user(), choice)
        total = [_("Total"), sum(r.certifications for r in rows), sum(r.copies for r in rows),
                 sum(r.pages for r in rows), sum(r.fees for r in rows)]
        user = current_user()
        cover = [(_("Period"), f"{choice.period.first:%d/%m/%Y} – {choice.period.last:%d/%m/%Y}"),
                 (_("Reporting unit"), user.office.name if getattr(user, "office", None)
                  else _("All offices")),
                 (_("Document type"), choice.document_type.name_vi if choice.document_type
                  else _("All document types")),
                 (_("Made at"), format_datetime(utcnow()))]
        headers = [_("Office"), _("Certifications (numbers issued)"), _("Copies certified"),
                   _("Pages certified"), _("Fees (đồng)")]
        body = [[r.office, r.certifications, r.copies, r.pages, r.fees] for r in rows]
        return xlsx_response(
            f"thong-ke-chung-thuc-{choice.period.first:%Y%m%d}-{choice.period.last:%Y%m%d}.xlsx",
            _("Statistics of electronic certified copies"), headers, [*body, total], cover,
            widths=[42, 18, 16, 16, 18])
