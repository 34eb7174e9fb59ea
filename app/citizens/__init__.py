"""Citizen accounts ("DVCQG account" in this system), keyed by identity number."""
from app.modules import Api, ModuleSpec, View

MODULE = ModuleSpec(
    name="citizens",
    platform=True,
    depends=("offices",),
    models="app.citizens.models",
    menu=(View("app.citizens.views:CitizenRegisterView"),
          Api("app.citizens.views:CitizenApi")),
    setup="app.citizens.oidc:register",  # the national identity provider, when configured
)
