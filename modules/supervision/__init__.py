"""Supervision: the dashboard (figures and charts over a period, per the user's scope) and
the statistics report offices send upward.  Reads only, through the other modules'
report functions; owns no table."""
from app.modules import ModuleSpec


def _register(appbuilder):
    from modules.supervision.views import register

    register(appbuilder)


_SEE = [["^DashboardView$", "^can_(index|statistics)$"], ["^(Dashboard)$", "^menu_access$"]]

MODULE = ModuleSpec(
    name="supervision",
    depends=("platform", "copies", "appointments", "registers"),
    register=_register,
    roles={"Supervisor": _SEE, "Leader": _SEE, "OfficeAdmin": _SEE},
    landing={"Supervisor": "DashboardView.index"},
)
