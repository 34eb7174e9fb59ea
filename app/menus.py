"""Menu categories shared by several parts (stable English names: permission keys)."""
from flask_babel import lazy_gettext as _l

from app.modules import Category

ADMINISTRATION = Category("Administration", _l("Administration"), "fa-cogs")
OFFICE_SETTINGS = Category("Office settings", _l("Office settings"), "fa-sliders")
