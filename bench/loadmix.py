"""A working day's mix, driven over HTTP by threads (a bounded script on loopback): citizens
booking the same few slots, officers taking in scans, leaders signing, clerks numbering
into the same register, lists and exports, the public verifying copies, supervisors on
the dashboard.  Used by ``bench.load`` (50 users, 5 minutes), ``bench.scaleout`` (two
app servers) and ``bench.soak`` (30 minutes at a quarter of the rate).

Afterwards it checks what must hold whatever the load: register numbers gap-free, no slot
overbooked, every message sent exactly once (an SMTP sink and an SMS gateway on loopback
count what they receive)."""
from __future__ import annotations

import email
import http.server
import itertools
import json
import random
import re
import threading
import time
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import requests

from deploy import leader
from deploy.stack import port

PASSWORD = "saoy-demo"
GIVEN = ["An", "Bình", "Cường", "Dũng", "Giang", "Hải", "Khánh", "Long", "Minh", "Nam",
         "Phúc", "Quang", "Sơn", "Tâm", "Tuấn", "Vinh"]


# --- what the outside world receives ------------------------------------------------------

class Sinks:
    """An SMTP server (aiosmtpd) and an SMS gateway (HTTP), recording every delivery."""

    def __init__(self):
        from aiosmtpd.controller import Controller

        self.mails: list[str] = []
        self.sms: list[str] = []
        sinks = self

        class Mail:
            async def handle_DATA(self, server, session, envelope):  # noqa: N802
                sinks.mails.append(email.message_from_bytes(envelope.content)["Message-ID"])
                return "250 OK"

        class Gateway(http.server.BaseHTTPRequestHandler):
            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                sinks.sms.append(body["id"])
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.end_headers()
                self.wfile.write(b'{"message_id": "ok"}')

            def log_message(self, *args):
                pass

        self.smtp_port, self.sms_port = port(), port()
        self.smtp = Controller(Mail(), hostname="127.0.0.1", port=self.smtp_port)
        self.smtp.start()
        self.gateway = http.server.ThreadingHTTPServer(("127.0.0.1", self.sms_port), Gateway)
        threading.Thread(target=self.gateway.serve_forever, daemon=True).start()

    def env(self) -> dict[str, str]:
        return {"SAOY_SMTP_HOST": "127.0.0.1", "SAOY_SMTP_PORT": str(self.smtp_port),
                "SAOY_SMTP_SECURITY": "none", "SAOY_MAIL_FROM": "saoy@example.vn",
                "SAOY_SMS_GATEWAY_URL": f"http://127.0.0.1:{self.sms_port}/sms",
                "SAOY_OUTBOX_INTERVAL": "1"}

    def close(self) -> None:
        self.smtp.stop()
        self.gateway.shutdown()


# --- recording ---------------------------------------------------------------------------

@dataclass
class Recorder:
    times: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    refused: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    errors: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def call(self, label: str, send, expected=(200, 201, 202), refusals=(409,)):
        started = time.perf_counter()
        try:
            r = send()
        except requests.RequestException as exc:
            with self.lock:
                self.errors.append(f"{label}: {type(exc).__name__}")
            return None
        elapsed = time.perf_counter() - started
        with self.lock:
            self.times[label].append(elapsed)
            if r.status_code in refusals:
                self.refused[label] += 1
            elif r.status_code not in expected:
                self.errors.append(f"{label}: {r.status_code} {r.text[:160]}")
        return r

    def table(self) -> list[tuple[str, int, float, float, float]]:
        rows = []
        for label, values in sorted(self.times.items()):
            values = sorted(values)
            rows.append((label, len(values), quantile(values, 0.5), quantile(values, 0.95),
                         quantile(values, 0.99)))
        return rows


def quantile(values: list[float], q: float) -> float:
    if not values:
        return 0.0
    return values[min(len(values) - 1, int(round(q * (len(values) - 1))))] * 1000


# --- the people --------------------------------------------------------------------------

def _session(address: str | None) -> requests.Session:
    """A client of its own; behind a proxy (ProxyFix) ``address`` is where it comes from."""
    s = requests.Session()
    s.trust_env = False
    if address:
        s.headers["X-Forwarded-For"] = address
    return s


def api_session(base: str, username: str, address: str | None = None) -> requests.Session:
    s = _session(address)
    r = s.post(f"{base}/api/v1/security/login", json={"username": username,
                                                       "password": PASSWORD, "provider": "db"},
               timeout=60)
    r.raise_for_status()
    s.headers["Authorization"] = f"Bearer {r.json()['access_token']}"
    return s


def web_session(base: str, username: str, address: str | None = None) -> requests.Session:
    s = _session(address)
    page = s.get(f"{base}/login/", timeout=60).text
    token = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', page).group(1)
    r = s.post(f"{base}/login/", data={"username": username, "password": PASSWORD,
                                       "csrf_token": token}, timeout=60)
    assert "logout-form" in r.text, f"web login of {username} failed"
    return s


@dataclass
class World:
    """What the people need to know: ids from the demo data, the scan they upload."""

    bases: list[str]
    office_ids: dict[str, int]
    type_ids: dict[str, int]
    register_ids: dict[str, int]
    citizens: list[str]
    scan: bytes
    data_dir: Path  # the demo PKI's key files: leader.b signs on "their own computer"
    think: float = 1.0  # seconds between one person's actions, on average


class Person(threading.Thread):
    def __init__(self, world: World, recorder: Recorder, deadline: float, number: int):
        super().__init__(daemon=True)
        self.world, self.rec, self.deadline = world, recorder, deadline
        self.base = world.bases[number % len(world.bases)]
        self.rng = random.Random(number)
        self.number = number
        self.address = f"10.0.{number // 200}.{number % 200 + 1}"

    def pause(self) -> None:
        time.sleep(self.world.think * self.rng.uniform(0.5, 1.5))

    def run(self) -> None:
        try:
            self.start_up()
        except Exception as exc:  # noqa: BLE001 - counted, not raised in a thread
            with self.rec.lock:
                self.rec.errors.append(f"{type(self).__name__} start: {exc!r}"[:200])
            return
        while time.time() < self.deadline:
            try:
                self.act()
            except Exception as exc:  # noqa: BLE001
                with self.rec.lock:
                    self.rec.errors.append(f"{type(self).__name__}: {exc!r}"[:200])
            self.pause()

    def start_up(self) -> None:
        pass


class Citizen(Person):
    """Books one of the first free slots of office A (everyone wants the same ones), and
    cancels half of its bookings again."""

    def start_up(self):
        citizens = self.world.citizens
        self.http = api_session(self.base, citizens[self.number % len(citizens)], self.address)
        self.mine: list[int] = []

    def act(self):
        office = self.world.office_ids["A"]
        r = self.rec.call("citizen: free slots", lambda: self.http.get(
            f"{self.base}/api/v1/appointment/slots", params={"office_id": office}, timeout=60))
        slots = (r.json().get("slots") if r is not None and r.ok else None) or []
        if slots:
            start = slots[self.rng.randrange(min(3, len(slots)))]["start"]
            # 409: the slot filled up or the citizen holds three; 422: in the seconds since
            # the list, the slot came within the two hours' notice. Both refusals are right.
            booked = self.rec.call("citizen: book", lambda: self.http.post(
                f"{self.base}/api/v1/appointment/", json={
                    "office_id": office, "document_type_id": self.world.type_ids["A"],
                    "start": start}, timeout=60), refusals=(409, 422))
            if booked is not None and booked.status_code == 201:
                self.mine.append(booked.json()["id"])
        if self.mine and self.rng.random() < 0.5:
            pk = self.mine.pop(0)
            self.rec.call("citizen: cancel", lambda: self.http.post(
                f"{self.base}/api/v1/appointment/{pk}/cancel", json={"reason": "bận"},
                timeout=60))


class Officer(Person):
    def start_up(self):
        self.letter = "AB"[self.number % 2]
        self.http = api_session(self.base, f"officer.{self.letter.lower()}", self.address)
        self.web = web_session(self.base, f"officer.{self.letter.lower()}", self.address)

    def act(self):
        # Half the requesters have a verified account, half get the copy by e-mail.
        requester = {"identity_number": "079203001234"} if self.rng.random() < 0.5 else {
            "email": f"nguoi.yeu.cau.{self.rng.randrange(10**6)}@example.vn",
            "name": "Trần Thị Gửi Thư"}
        r = self.rec.call("officer: intake (200 KB scan)", lambda: self.http.post(
            f"{self.base}/api/v1/copy/", files={"scan": ("scan.pdf", self.world.scan)},
            data={"document_type_id": self.world.type_ids[self.letter], **requester},
            timeout=120))
        if r is not None and r.status_code == 201:
            pk = r.json()["id"]
            self.rec.call("officer: submit", lambda: self.http.post(
                f"{self.base}/api/v1/copy/{pk}/submit", json={}, timeout=60))
        roll = self.rng.random()
        if roll < 0.3:
            self.rec.call("officer: list page", lambda: self.web.get(
                f"{self.base}/copies/list/", timeout=60))
        elif roll < 0.4:
            self.rec.call("officer: export .csv", lambda: self.web.get(
                f"{self.base}/copies/export.csv", timeout=300))


class Leader(Person):
    def start_up(self):
        self.letter = "AB"[self.number % 2]
        self.username = f"leader.{self.letter.lower()}"
        self.http = api_session(self.base, self.username, self.address)

    def act(self):
        r = self.rec.call("leader: queue", lambda: self.http.get(
            f"{self.base}/api/v1/copy/", params={"state": "awaiting_signature"}, timeout=60))
        waiting = r.json()["result"] if r is not None and r.ok else []
        if not waiting:
            return
        pk = waiting[self.rng.randrange(min(3, len(waiting)))]["id"]  # others may take it
        signed = self.rec.call("leader: sign", lambda: leader.sign(
            self.http, self.base, pk, self.username, self.world.data_dir, timeout=120))
        if signed is not None and signed.ok:
            self.rec.call("leader: forward", lambda: self.http.post(
                f"{self.base}/api/v1/copy/{pk}/forward", json={}, timeout=60))


class Clerk(Person):
    def start_up(self):
        self.letter = "AB"[self.number % 2]
        self.http = api_session(self.base, f"clerk.{self.letter.lower()}", self.address)

    def act(self):
        r = self.rec.call("clerk: queue", lambda: self.http.get(
            f"{self.base}/api/v1/copy/", params={"state": "awaiting_seal"}, timeout=60))
        waiting = r.json()["result"] if r is not None and r.ok else []
        if not waiting:
            return
        pk = waiting[self.rng.randrange(min(3, len(waiting)))]["id"]
        sealed = self.rec.call("clerk: number and seal", lambda: self.http.post(
            f"{self.base}/api/v1/copy/{pk}/seal",
            json={"register_id": self.world.register_ids[self.letter]}, timeout=120))
        if sealed is None or not sealed.ok:
            return
        self.rec.call("clerk: fee paid", lambda: self.http.post(
            f"{self.base}/api/v1/copy/{pk}/pay", json={"receipt_number": f"BL-{pk}"},
            timeout=60))
        self.rec.call("clerk: deliver", lambda: self.http.post(
            f"{self.base}/api/v1/copy/{pk}/deliver", json={}, timeout=120))


class Verifier(Person):
    """Someone scanning the QR code of a delivered copy."""

    codes: list[str] = []

    def start_up(self):
        self.http = _session(self.address)
        self.clerk = api_session(self.base, "clerk.a", self.address)

    def act(self):
        if not Verifier.codes or self.rng.random() < 0.2:
            r = self.rec.call("clerk: delivered list", lambda: self.clerk.get(
                f"{self.base}/api/v1/copy/", params={"state": "delivered"}, timeout=60))
            for row in (r.json()["result"] if r is not None and r.ok else [])[:20]:
                one = self.clerk.get(f"{self.base}/api/v1/copy/{row['id']}", timeout=60)
                if one.ok:
                    Verifier.codes.append(one.json()["verify_code"])
        if Verifier.codes:
            code = self.rng.choice(Verifier.codes)
            self.rec.call("public: verify by QR code", lambda: self.http.get(
                f"{self.base}/api/v1/verify/{code}", timeout=120))


class Supervisor(Person):
    def start_up(self):
        self.web = web_session(self.base, "supervisor", self.address)

    def act(self):
        self.rec.call("supervisor: dashboard", lambda: self.web.get(
            f"{self.base}/dashboard/", timeout=120))
        if self.rng.random() < 0.3:
            self.rec.call("supervisor: list page", lambda: self.web.get(
                f"{self.base}/copies/list/", timeout=60))


#: 50 people: who does what on a working day.
PEOPLE = ([Citizen] * 10 + [Officer] * 10 + [Leader] * 8 + [Clerk] * 8 + [Verifier] * 8
          + [Supervisor] * 6)


def run(world: World, seconds: float, people=PEOPLE) -> Recorder:
    recorder = Recorder()
    deadline = time.time() + seconds
    threads = [kind(world, recorder, deadline, n) for n, kind in enumerate(people)]
    for thread in threads:
        thread.start()
        time.sleep(0.05)
    for thread in threads:
        thread.join(seconds + 300)
    return recorder


# --- the world and the invariants -----------------------------------------------------

def prepare(app, bases: list[str], citizens: int = 10) -> World:
    """Citizens' accounts (made through the registration service), ids, a 200 KB scan."""
    from sqlalchemy import select

    from app.citizens.services import Registration, register_citizen
    from app.demo import OFFICE_A, OFFICE_B
    from app.extensions import db
    from app.offices.models import Office
    from app.offices.services import offered_document_types
    from app.transactions import atomic
    from modules.registers.models import Register, RegisterStatus
    from tests.pdfs import sized_scan_pdf

    names = []
    with app.app_context():
        role = app.appbuilder.sm.find_role("Citizen")
        for n in range(citizens):
            identity = f"0792030{n:05d}"
            with atomic(db.session):
                register_citizen(db.session, Registration(
                    full_name=f"Nguyễn Văn {GIVEN[n % len(GIVEN)]}", identity_number=identity,
                    phone=f"09{n:08d}", email=f"cd{n}@example.vn", password=PASSWORD), role)
            names.append(identity)
        offices, types, registers = {}, {}, {}
        for letter, code in (("A", OFFICE_A), ("B", OFFICE_B)):
            office = db.session.scalars(select(Office).where(Office.code == code)).one()
            offices[letter] = office.id
            types[letter] = offered_document_types(db.session, office.id)[0].id
            registers[letter] = db.session.scalars(select(Register.id).where(
                Register.office_id == office.id, Register.status == RegisterStatus.open)
                .order_by(Register.id)).first()
        db.session.remove()
    return World(bases, offices, types, registers, names, sized_scan_pdf(200 * 1024),
                 Path(app.config["DATA_DIR"]))


def invariants(app, sinks: Sinks | None, wait_seconds: float = 120) -> dict[str, object]:
    """What must hold after any load: gap-free numbers, no overbooked slot, each message
    delivered once (after the workers drained the outbox)."""
    from sqlalchemy import func, select

    from app.extensions import db
    from app.notifications.models import Channel, Message, Status
    from modules.appointments.models import ACTIVE_STATUSES, Appointment, AppointmentSlot
    from modules.appointments.services import settings_for
    from modules.registers.models import Register, RegisterEntry

    found: dict[str, object] = {}
    with app.app_context():
        s = db.session
        deadline = time.time() + wait_seconds
        while time.time() < deadline and s.scalar(select(func.count(Message.id)).where(
                Message.status.in_([Status.queued, Status.sending, Status.failed]))):
            s.rollback()
            time.sleep(1)
        gaps = []
        for register in s.scalars(select(Register)):
            numbers = sorted(s.scalars(select(RegisterEntry.number).where(
                RegisterEntry.register_id == register.id)))
            expected = list(range(register.start_number, register.next_number))
            if numbers != expected:
                gaps.append(register.id)
        found["registers with a gap or a double"] = gaps
        found["numbers issued"] = s.scalar(select(func.count(RegisterEntry.id)))
        overbooked = []
        active = dict(s.execute(select(
            func.concat(Appointment.office_id, "@", Appointment.start), func.count())
            .where(Appointment.status.in_(ACTIVE_STATUSES))
            .group_by(Appointment.office_id, Appointment.start)).all())
        for slot in s.scalars(select(AppointmentSlot)):
            capacity = settings_for(s, slot.office_id).capacity
            count = active.get(f"{slot.office_id}@{slot.start}", 0)
            if slot.booked > capacity or count > capacity:
                overbooked.append((slot.office_id, str(slot.start), slot.booked, count))
        found["overbooked slots"] = overbooked
        found["appointments booked"] = s.scalar(select(func.count(Appointment.id)))
        sent = dict(s.execute(select(Message.channel, func.count()).where(
            Message.status == Status.sent).group_by(Message.channel)).all())
        found["messages sent (e-mail, SMS)"] = (sent.get(Channel.email, 0),
                                                sent.get(Channel.sms, 0))
        found["messages not sent"] = s.scalar(select(func.count(Message.id)).where(
            Message.status != Status.sent, Message.channel != Channel.portal))
        if sinks is not None:
            found["e-mails received twice"] = len(sinks.mails) - len(set(sinks.mails))
            found["SMS received twice"] = len(sinks.sms) - len(set(sinks.sms))
            found["received (e-mail, SMS)"] = (len(sinks.mails), len(sinks.sms))
        db.session.remove()
    return found


def holds(found: dict[str, object]) -> bool:
    ok = not found["registers with a gap or a double"] and not found["overbooked slots"]
    if "e-mails received twice" in found:
        ok = ok and found["e-mails received twice"] == 0 and found["SMS received twice"] == 0
        ok = ok and found["received (e-mail, SMS)"] == found["messages sent (e-mail, SMS)"]
    return ok


def print_report(title: str, recorder: Recorder, found: dict[str, object],
                 seconds: float) -> None:
    total = sum(len(v) for v in recorder.times.values())
    print(f"\n{title}: {total:,} requests in {seconds / 60:.1f} min "
          f"({total / seconds:.1f}/s), errors {len(recorder.errors)}, refused as designed "
          f"(someone else was first, a full slot) {sum(recorder.refused.values())}")
    print(f"  {'page':<34} {'count':>7} {'p50':>8} {'p95':>8} {'p99':>8}")
    for label, count, p50, p95, p99 in recorder.table():
        print(f"  {label:<34} {count:7d} {p50:6.0f}ms {p95:6.0f}ms {p99:6.0f}ms")
    for error in itertools.islice(recorder.errors, 10):
        print(f"  ERROR {error}")
    for key, value in found.items():
        print(f"  {key}: {value}")
    print(f"  invariants hold: {holds(found)}", flush=True)
