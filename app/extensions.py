"""Extension singletons that can serve several apps (tests build many)."""
from flask_appbuilder.utils.legacy import get_sqla_class
from flask_migrate import Migrate
from flask_sqlalchemy.session import Session as FlaskSession
from flask_wtf.csrf import CSRFProtect

from app.transactions import guard_writes

db = get_sqla_class()()
guard_writes(FlaskSession)  # the app's writes happen inside atomic() or not at all
migrate = Migrate()
csrf = CSRFProtect()
