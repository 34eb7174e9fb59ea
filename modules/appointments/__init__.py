"""Appointments: slots, booking, reschedule, cancel, no-show, reminders.

Owns the ``appt_`` tables; the procedure is the table in ``workflow.py``.  "Process" on
a pending appointment asks the ``appointments.process`` hook (the copies module's
intake form takes over, and marks it processed when the request is made).
"""
from flask_babel import lazy_gettext as _l

from app.modules import Api, Category, Job, Link, ModuleSpec, View

MY_APPOINTMENTS = Category("My appointments", _l("My appointments"), "fa-calendar")
APPOINTMENTS = Category("Appointments", _l("Appointments"), "fa-calendar")


_CITIZEN = [
    ["^AppointmentPortalView$", "^can_(book|book_post|mine|detail|cancel|ics)$"],
    ["^AppointmentApi$", "^can_(get|post|cancel)$"],
    ["^(My appointments|Book an appointment|My appointments list)$", "^menu_access$"],
]
_HANDLE = [
    ["^PendingAppointmentView$",
     "^(can_list|can_show|can_change|process|reschedule|cancel)$"],
    ["^AppointmentApi$", "^can_(get|cancel|reschedule)$"],
    ["^(Appointments|Appointments pending)$", "^menu_access$"],
]
_READ = [
    ["^PendingAppointmentView$", "^(can_list|can_show)$"],
    ["^AppointmentApi$", "^can_get$"],
    ["^(Appointments|Appointments pending)$", "^menu_access$"],
]
_CONFIGURE = _HANDLE + [
    ["^(AppointmentSettingsView|WorkingSessionView|ClosureView)$",
     "^(can_list|can_show|can_add|can_edit|can_delete)$"],
    ["^(Appointment settings|Weekly working plan|Closures and holidays)$", "^menu_access$"],
]

MODULE = ModuleSpec(
    name="appointments",
    depends=("platform",),
    models="modules.appointments.models",
    menu=(
        View("modules.appointments.views:AppointmentPortalView", "Book an appointment",
             _l("Book an appointment"), "fa-calendar-plus-o", MY_APPOINTMENTS,
             href="/appointments/book"),
        Link("My appointments list", _l("My appointments"), "/appointments/mine", "fa-list",
             MY_APPOINTMENTS),
        View("modules.appointments.views:PendingAppointmentView", "Appointments pending",
             _l("Appointments pending"), "fa-calendar-check-o", APPOINTMENTS),
        View("modules.appointments.views:AppointmentSettingsView", "Appointment settings",
             _l("Appointment settings"), "fa-sliders", APPOINTMENTS),
        View("modules.appointments.views:WorkingSessionView", "Weekly working plan",
             _l("Weekly working plan"), "fa-clock-o", APPOINTMENTS),
        View("modules.appointments.views:ClosureView", "Closures and holidays",
             _l("Closures and holidays"), "fa-ban", APPOINTMENTS),
        Api("modules.appointments.api:AppointmentApi"),
    ),
    offers_hooks=("appointments.process",),
    roles={"Citizen": _CITIZEN, "Officer": _HANDLE, "OfficeAdmin": _CONFIGURE,
           "Leader": _READ, "Clerk": _READ, "Supervisor": _READ},
    jobs=(Job("appointment_reminders", "modules.appointments.jobs:reminders_job",
              seconds=900, seconds_setting="APPOINTMENT_JOBS_SECONDS"),
          Job("appointment_no_shows", "modules.appointments.jobs:no_shows_job",
              seconds=900, seconds_setting="APPOINTMENT_JOBS_SECONDS")),
    demo="modules.appointments.demo:load",
)
