"""Supervision: the dashboard (figures and charts over a period, per the user's scope) and
the statistics report offices send upward.  Reads only, through the other modules'
report functions; owns no table."""
from flask_babel import lazy_gettext as _l

from app.modules import ModuleSpec, View

_SEE = [["^DashboardView$", "^can_(index|statistics)$"], ["^(Dashboard)$", "^menu_access$"]]

MODULE = ModuleSpec(
    name="supervision",
    depends=("platform", "copies", "appointments", "registers"),
    menu=(View("modules.supervision.views:DashboardView", "Dashboard", _l("Dashboard"),
               "fa-bar-chart"),),
    roles={"Supervisor": _SEE, "Leader": _SEE, "OfficeAdmin": _SEE},
    landing={"Supervisor": "DashboardView.index"},
)
