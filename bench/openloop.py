"""Open-loop load at a province's morning peak (issue 31): requests arrive at a set rate
whatever the answers (Poisson arrivals, a fixed seed), against the stack as deployed —
gunicorn (4 sync workers) and a jobs worker on PostgreSQL, the demo PKI's OCSP, CRL and
time-stamping service on loopback (so signing checks revocation and delivery is B-LTA),
an SMTP sink and an SMS gateway.

Unlike ``bench.load`` (closed-loop: each answer brings the next request, so a slow server
slows the load down and its figures hide queueing), every request here is due at its
arrival time and its time is counted from then to the answer — a request that waited
for a free connection waited as a citizen would.

The mix is a working morning's (weights per 100 requests, ``MIX``): citizens looking for
and booking slots, officers taking in 200 KB scans and submitting them, leaders signing
(leader.a with the key the server holds, leader.b through the plugin round trip) and
forwarding, clerks numbering into one register, paying and delivering (B-LTA), the public
verifying copies by their QR code, supervisors on the dashboard and lists.  A step that
needs work not there yet (nothing to sign) reads its queue instead, counted as such.

    python -m bench.openloop [rate:seconds …]     # default: 5 req/s for 600 s

Each stage reports p50/p95/p99 per page against the goal (300 ms; 800 ms for signing,
sealing, delivering and verifying), the generator's own lag, and whether it held.
"""
from __future__ import annotations

import collections
import contextlib
import queue
import random
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from bench.common import ROOT, machine

sys.path.insert(0, str(ROOT))

from bench import loadmix
from bench.load import app_for, deployed
from deploy import leader
from deploy.stack import BIN, Stack, port

#: (page, weight per 100 requests): a province's morning at the counters.
MIX = [
    ("citizen: free slots", 14), ("citizen: book", 7), ("citizen: cancel", 3),
    ("officer: intake (200 KB scan)", 7), ("officer: submit", 7), ("officer: list page", 3),
    ("officer: export .csv", 2),
    ("leader: queue", 5), ("leader: sign", 6), ("leader: forward", 6),
    ("clerk: queue", 5), ("clerk: number and seal", 6), ("clerk: fee paid", 6),
    ("clerk: deliver (B-LTA)", 6),
    ("public: verify by QR code", 9),
    ("supervisor: dashboard", 5), ("supervisor: list page", 3),
]
#: Pages whose goal is 800 ms: they make or check signatures.
SIGNATURE_PAGES = {"leader: sign", "clerk: number and seal", "clerk: deliver (B-LTA)",
                   "public: verify by QR code"}
GOAL_MS, SIGNATURE_GOAL_MS = 300, 800
#: Logged-in clients per user: enough that an arrival rarely waits for one.
SESSIONS = {"citizen": 3, "staff": 16, "web": 8}


@dataclass
class Stage:
    rate: float
    seconds: float
    times: dict[str, list[float]] = field(default_factory=lambda: collections.defaultdict(list))
    errors: list[str] = field(default_factory=list)
    refused: collections.Counter = field(default_factory=collections.Counter)
    substituted: collections.Counter = field(default_factory=collections.Counter)
    lag: list[float] = field(default_factory=list)
    details: dict[str, list[float]] = field(
        default_factory=lambda: collections.defaultdict(list))
    lock: threading.Lock = field(default_factory=threading.Lock)

    def record(self, label: str, due: float, started: float, response, refusals=(409,),
               detail: str | None = None):
        done = time.perf_counter()
        with self.lock:
            self.lag.append(started - due)
            self.times[label].append(done - due)
            if detail:  # the same time again, under a finer name (not a page of its own)
                self.details[detail].append(done - due)
            if response is None:
                self.errors.append(f"{label}: no answer")
            elif response.status_code in refusals:
                self.refused[label] += 1
            elif response.status_code not in (200, 201, 202):
                self.errors.append(f"{label}: {response.status_code} {response.text[:160]}")

    def add_details(self, seconds_by_name: dict[str, float]) -> None:
        """Durations of a request's parts (each from its own start, not from when due)."""
        with self.lock:
            for name, seconds in seconds_by_name.items():
                self.details[name].append(seconds)

    def failed(self, label: str, due: float, exc: Exception) -> None:
        with self.lock:
            self.times[label].append(time.perf_counter() - due)
            self.errors.append(f"{label}: {exc!r}"[:240])

    def rows(self):
        for label, _weight in MIX:
            values = sorted(self.times.get(label, []))
            limit = SIGNATURE_GOAL_MS if label in SIGNATURE_PAGES else GOAL_MS
            p95 = loadmix.quantile(values, 0.95)
            yield (label, len(values), loadmix.quantile(values, 0.5), p95,
                   loadmix.quantile(values, 0.99), limit, bool(values) and p95 <= limit)

    def held(self) -> bool:
        return not self.errors and all(ok for *_rest, ok in self.rows())


class Sessions:
    """Logged-in clients per user, each used by one request at a time."""

    def __init__(self, base: str, users: list[str], count: int, web: bool = False):
        self.pools: dict[str, queue.Queue] = {}
        login = loadmix.web_session if web else loadmix.api_session
        for user in users:
            pool: queue.Queue = queue.Queue()
            for n in range(count):
                pool.put(login(base, user, f"10.9.{len(self.pools)}.{n + 1}"))
            self.pools[user] = pool

    @contextlib.contextmanager
    def of(self, user: str):
        session = self.pools[user].get()
        try:
            yield session
        finally:
            self.pools[user].put(session)


class Morning:
    """The work in flight: what each step hands to the next (request ids by stage)."""

    def __init__(self, world: loadmix.World, base: str):
        self.world, self.base = world, base
        self.lock = threading.Lock()
        self.ready: dict[str, collections.deque] = collections.defaultdict(collections.deque)
        self.booked: collections.deque = collections.deque()
        self.codes: list[str] = []
        staff = [f"{role}.{o}" for role in ("officer", "leader", "clerk") for o in "ab"]
        self.sessions = Sessions(base, staff, SESSIONS["staff"])
        self.sessions.pools.update(Sessions(base, world.citizens, SESSIONS["citizen"]).pools)
        self.web = Sessions(base, ["supervisor", "officer.a"], SESSIONS["web"], web=True)
        self.public = [loadmix._session(f"10.8.0.{n + 1}") for n in range(SESSIONS["staff"])]

    def take(self, stage: str):
        with self.lock:
            return self.ready[stage].popleft() if self.ready[stage] else None

    def hand(self, stage: str, item) -> None:
        with self.lock:
            self.ready[stage].append(item)


class Arrival:
    """One arrival: the request for its page (or the queue when no work waits), timed
    from when it was due."""

    def __init__(self, morning: Morning, label: str, rng: random.Random, due: float,
                 stage: Stage):
        self.morning, self.label, self.rng, self.due, self.stage = \
            morning, label, rng, due, stage
        self.world, self.base = morning.world, morning.base
        self.letter = rng.choice("AB")
        self.office = self.letter.lower()

    def run(self) -> None:
        kind = self.label.split(":")[0]
        if self.label in FLOW:
            self.flow()
        elif self.label in WEB_PAGES:
            self.web_page()
        elif self.label == "public: verify by QR code":
            self.verify()
        elif kind == "citizen":
            {"citizen: free slots": self.free, "citizen: book": self.book,
             "citizen: cancel": self.cancel}[self.label]()
        elif self.label == "officer: intake (200 KB scan)":
            self.intake()
        else:  # a leader's or a clerk's queue
            self.queue(kind, QUEUE_STATES[kind], self.label, counted=False)

    def send(self, name: str, user: str, call, refusals=(409,), detail: str | None = None):
        with self.morning.sessions.of(user) as http:
            now = time.perf_counter()
            try:
                response = call(http)
            except Exception as exc:  # noqa: BLE001 - counted as an error of that page
                self.stage.failed(name, self.due, exc)
                return None
            self.stage.record(name, self.due, now, response, refusals, detail)
            return response

    def queue(self, role: str, state: str, name: str, counted: bool = True):
        if counted:
            self.stage.substituted[self.label] += 1
        return self.send(name, f"{role}.{self.office}", lambda h: h.get(
            f"{self.base}/api/v1/copy/", params={"state": state}, timeout=120))

    def slots(self, citizen: str):
        return self.send("citizen: free slots", citizen, lambda h: h.get(
            f"{self.base}/api/v1/appointment/slots",
            params={"office_id": self.world.office_ids["A"]}, timeout=120))

    def free(self) -> None:  # "citizen: free slots"
        self.slots(self.rng.choice(self.world.citizens))

    def book(self) -> None:
        citizen = self.rng.choice(self.world.citizens)
        answer = self.slots(citizen)
        found = (answer.json().get("slots") if answer is not None and answer.ok else None) \
            or []
        if not found:
            return
        start = found[self.rng.randrange(min(5, len(found)))]["start"]
        self.due = time.perf_counter()  # booking is the citizen's next click
        r = self.send(self.label, citizen, lambda h: h.post(
            f"{self.base}/api/v1/appointment/", json={
                "office_id": self.world.office_ids["A"],
                "document_type_id": self.world.type_ids["A"], "start": start}, timeout=120),
            refusals=(409, 422))
        if r is not None and r.status_code == 201:
            with self.morning.lock:
                self.morning.booked.append((citizen, r.json()["id"]))

    def cancel(self) -> None:
        with self.morning.lock:
            mine = self.morning.booked.popleft() if self.morning.booked else None
        if mine is None:
            self.stage.substituted[self.label] += 1
            self.free()
            return
        self.send(self.label, mine[0], lambda h: h.post(
            f"{self.base}/api/v1/appointment/{mine[1]}/cancel", json={"reason": "bận"},
            timeout=120))

    def intake(self) -> None:
        requester = {"identity_number": "079203001234"} if self.rng.random() < 0.5 else {
            "email": f"nguoi.{self.rng.randrange(10**6)}@example.vn", "name": "Trần Thị Gửi"}
        r = self.send(self.label, f"officer.{self.office}", lambda h: h.post(
            f"{self.base}/api/v1/copy/", files={"scan": ("scan.pdf", self.world.scan)},
            data={"document_type_id": self.world.type_ids[self.letter], **requester},
            timeout=120))
        if r is not None and r.status_code == 201:
            self.morning.hand(f"intake.{self.office}", r.json()["id"])

    def fetch(self, http, path: str, timeout: float) -> None:
        """GET ``path`` as this arrival's page, timed from when it was due."""
        now = time.perf_counter()
        try:
            response = http.get(f"{self.base}{path}", timeout=timeout)
        except Exception as exc:  # noqa: BLE001 - counted as an error of that page
            self.stage.failed(self.label, self.due, exc)
            return
        self.stage.record(self.label, self.due, now, response)

    def web_page(self) -> None:
        user, path = WEB_PAGES[self.label]
        with self.morning.web.of(user) as http:
            self.fetch(http, path, 300)

    def verify(self) -> None:
        with self.morning.lock:
            code = self.rng.choice(self.morning.codes) if self.morning.codes else None
        if code is None:
            self.stage.substituted[self.label] += 1
            return
        self.fetch(self.morning.public[self.rng.randrange(len(self.morning.public))],
                   f"/api/v1/verify/{code}", 120)

    def flow(self) -> None:
        """A step of the procedure on a request the previous step handed on."""
        source, target, (role, state) = FLOW[self.label]
        pk = self.morning.take(f"{source}.{self.office}")
        if pk is None:
            self.queue(role, state, f"{role}: queue")
            return
        base, world, user = self.base, self.world, f"{role}.{self.office}"
        calls = {
            "officer: submit": lambda h: h.post(f"{base}/api/v1/copy/{pk}/submit", json={},
                                                timeout=120),
            "leader: sign": lambda h: leader.sign(h, base, pk, user, world.data_dir,
                                                  timeout=120, steps=steps),
            "leader: forward": lambda h: h.post(f"{base}/api/v1/copy/{pk}/forward", json={},
                                                timeout=120),
            "clerk: number and seal": lambda h: h.post(
                f"{base}/api/v1/copy/{pk}/seal",
                json={"register_id": world.register_ids[self.letter]}, timeout=120),
            "clerk: fee paid": lambda h: h.post(f"{base}/api/v1/copy/{pk}/pay",
                                                json={"receipt_number": f"BL-{pk}"},
                                                timeout=120),
            "clerk: deliver (B-LTA)": lambda h: h.post(f"{base}/api/v1/copy/{pk}/deliver",
                                                       json={}, timeout=120),
        }
        detail = None if self.label != "leader: sign" else \
            "key on the server (a)" if user == leader.SERVER_CUSTODY else "plugin round trip (b)"
        steps: dict[str, float] = {}
        r = self.send(self.label, user, calls[self.label], detail=detail)
        if r is not None and r.ok:
            self.stage.add_details({f"(b) {name}": seconds for name, seconds in steps.items()})
        if r is None or not r.ok:
            return
        if target != "delivered":
            self.morning.hand(f"{target}.{self.office}", pk)
            return
        with self.morning.sessions.of(user) as http:
            one = http.get(f"{base}/api/v1/copy/{pk}", timeout=120)
        if one.ok:
            with self.morning.lock:
                self.morning.codes.append(one.json()["verify_code"])


#: Staff pages read in the browser: page → (user, path).
WEB_PAGES = {"officer: list page": ("officer.a", "/copies/list/"),
             "officer: export .csv": ("officer.a", "/copies/export.csv"),
             "supervisor: list page": ("supervisor", "/copies/list/"),
             "supervisor: dashboard": ("supervisor", "/dashboard/")}
QUEUE_STATES = {"leader": "awaiting_signature", "clerk": "awaiting_seal"}


#: The procedure's steps: (page, the stage it takes work from, the stage it hands on to,
#: the queue it reads when nothing waits).
FLOW = {
    "officer: submit": ("intake", "submitted", ("officer", "draft")),
    "leader: sign": ("submitted", "signed", ("leader", "awaiting_signature")),
    "leader: forward": ("signed", "forwarded", ("leader", "awaiting_signature")),
    "clerk: number and seal": ("forwarded", "sealed", ("clerk", "awaiting_seal")),
    "clerk: fee paid": ("sealed", "paid", ("clerk", "awaiting_seal")),
    "clerk: deliver (B-LTA)": ("paid", "delivered", ("clerk", "awaiting_seal")),
}


def drive(morning: Morning, stage: Stage, seed: int) -> None:
    """Arrivals at ``stage.rate`` per second (exponential gaps) for ``stage.seconds``, each
    sent by a pool wide enough that none waits for an earlier answer."""
    rng = random.Random(seed)
    labels = [label for label, _w in MIX]
    weights = [w for _label, w in MIX]
    start = time.perf_counter()
    due = start
    with ThreadPoolExecutor(max_workers=256) as pool:
        while True:
            due += rng.expovariate(stage.rate)
            if due - start > stage.seconds:
                break
            label = rng.choices(labels, weights)[0]
            delay = due - time.perf_counter()
            if delay > 0:
                time.sleep(delay)
            pool.submit(Arrival(morning, label, random.Random(rng.random()), due, stage).run)


def report(stage: Stage, title: str) -> None:
    total = sum(len(v) for v in stage.times.values())
    lag = sorted(stage.lag)
    print(f"\n{title}: {stage.rate:g} req/s offered for {stage.seconds:.0f} s — {total:,} "
          f"requests answered, errors {len(stage.errors)}, refused as designed "
          f"{sum(stage.refused.values())}, queue read instead (no work waiting) "
          f"{sum(stage.substituted.values())}; generator lag p99 "
          f"{loadmix.quantile(lag, 0.99):.0f} ms")
    print(f"  {'page':<32} {'count':>6} {'p50':>7} {'p95':>7} {'p99':>7} {'goal':>7}")
    for label, count, p50, p95, p99, limit, ok in stage.rows():
        print(f"  {label:<32} {count:6d} {p50:5.0f}ms {p95:5.0f}ms {p99:5.0f}ms "
              f"{limit:5d}ms {'ok' if ok else 'OVER'}")
    for detail, values in sorted(stage.details.items()):
        values = sorted(values)
        print(f"    of which {detail:<30} {len(values):6d} "
              f"{loadmix.quantile(values, 0.5):5.0f}ms {loadmix.quantile(values, 0.95):5.0f}ms "
              f"{loadmix.quantile(values, 0.99):5.0f}ms")
    for error in stage.errors[:8]:
        print(f"  ERROR {error}")
    print(f"  held: {stage.held()}", flush=True)


def main() -> None:
    stages = [tuple(float(v) for v in arg.split(":")) for arg in sys.argv[1:]] or [(5, 600)]
    stack, sinks = Stack(prefix="saoy-bench-openloop-"), loadmix.Sinks()
    pki_port = port()
    try:
        env = deployed(stack, sinks, SAOY_DEMO_PKI_URL=f"http://127.0.0.1:{pki_port}")
        stack.start([str(BIN / "saoy"), "saoy", "demo-pki"], env, "demo-pki")
        stack.serve(env)
        base = f"http://127.0.0.1:{stack.app_port}"
        stack.wait(f"{base}/health/", 120)
        app = app_for(env)
        world = loadmix.prepare(app, [base], citizens=20)
        morning = Morning(world, base)
        print(f"open loop: gunicorn 4 sync workers + a jobs worker, PostgreSQL, demo PKI "
              f"(OCSP, CRL, TSA) — {machine()}", flush=True)
        drive(morning, Stage(4, 60), seed=1)  # warm-up: work in flight, copies to verify
        for n, (rate, seconds) in enumerate(stages):
            stage = Stage(rate, seconds)
            drive(morning, stage, seed=100 + n)
            report(stage, f"stage {n + 1}")
        print(f"\ninvariants: {loadmix.invariants(app, sinks)}", flush=True)
    finally:
        stack.stop()
        sinks.close()


if __name__ == "__main__":
    main()
