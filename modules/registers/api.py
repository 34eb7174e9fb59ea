"""``/api/v1/register/``: registers for clerks and readers, the same services as the pages."""
from __future__ import annotations

from flask_appbuilder import expose
from flask_appbuilder.api import permission_name, protect

from app.crud import Datamodel
from app.extensions import db
from app.scope import scoped
from app.scoping import ScopedModelRestApi
from app.transactions import atomic
from app.web import current_user
from modules.registers import services
from modules.registers.models import Register
from modules.registers.views import LABELS, RegisterView, register_book_response


class RegisterApi(ScopedModelRestApi):
    resource_name = "register"
    datamodel = Datamodel(Register, service=RegisterView.datamodel.service)
    allow_browser_login = True
    openapi_spec_tag = "Registers"
    class_permission_name = "RegisterApi"
    include_route_methods = {"get", "get_list", "post", "put", "info", "close", "export"}
    list_columns = ["id", "name", "book_number", "type_symbol", "year", "start_number",
                    "next_number", "status", "opening_date", "closing_date", "total_entries",
                    "office_id"]
    show_columns = list_columns + ["closed_at", "closed_by_id", "created_by_id"]
    add_columns = ["name", "book_number", "type_symbol", "year", "start_number",
                   "opening_date", "closing_date"]
    edit_columns = add_columns
    search_columns = ["name", "year", "status", "book_number"]
    label_columns = LABELS
    description_columns = RegisterView.description_columns

    @expose("/<int:pk>/close", methods=["POST"])
    @protect()
    @permission_name("close")
    def close(self, pk: int):
        """Close (khóa sổ) a register.
        ---
        post:
          parameters:
          - in: path
            name: pk
            schema: {type: integer}
          responses:
            200: {description: The closed register with its total}
            404: {description: Not found in your office}
            409: {description: Already closed}
        """
        with atomic(db.session):
            register = services.close_register(db.session, current_user(), pk)
        return self.response(200, id=register.id, status=register.status.value,
                             total_entries=register.total_entries,
                             closed_at=register.closed_at.isoformat())

    @expose("/<int:pk>/export.xlsx", methods=["GET"])
    @protect()
    @permission_name("export")
    def export(self, pk: int):
        """The register book as an Excel workbook.
        ---
        get:
          parameters:
          - in: path
            name: pk
            schema: {type: integer}
          responses:
            200:
              description: The workbook
              content:
                application/vnd.openxmlformats-officedocument.spreadsheetml.sheet: {}
            404: {description: Not found in your office}
        """
        register = scoped(db.session, current_user(), Register).get_or_404(pk)
        return register_book_response(register)
