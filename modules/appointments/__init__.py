"""Appointments: slots, booking, reschedule, cancel, no-show, reminders.

Owns the ``appt_`` tables.  The copies module turns an appointment into a copy
request through ``services.PROCESS_HANDLERS`` and ``services.mark_processed``.
"""
from app.modules import Job, ModuleSpec


def _register(appbuilder):
    from modules.appointments.views import register

    register(appbuilder)


def _demo() -> int:
    from modules.appointments.demo import load

    return load()


def _reminders() -> None:
    from app.extensions import db
    from modules.appointments.jobs import send_reminders

    send_reminders(db.session)


def _no_shows() -> None:
    from app.extensions import db
    from modules.appointments.jobs import mark_no_shows

    mark_no_shows(db.session)


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
    register=_register,
    roles={"Citizen": _CITIZEN, "Officer": _HANDLE, "OfficeAdmin": _CONFIGURE,
           "Leader": _READ, "Clerk": _READ, "Supervisor": _READ},
    jobs=(Job("appointment_reminders", _reminders, seconds=900,
              seconds_setting="APPOINTMENT_JOBS_SECONDS"),
          Job("appointment_no_shows", _no_shows, seconds=900,
              seconds_setting="APPOINTMENT_JOBS_SECONDS")),
    demo=_demo,
)
