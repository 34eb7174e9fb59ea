"""What a verification answers, and what it may cost: the report's parts (signatures,
revisions, changes) and the budget every step draws on."""
from __future__ import annotations

import base64
import json
import time
from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass(frozen=True)
class Limits:
    """The budget of one verification (public endpoints: anyone can send anything)."""

    max_revisions: int = 30
    max_render_pages: int = 60  # page renders in one verification
    seconds: float = 12.0  # the analysis' own deadline, checked between steps
    wall_seconds: float = 15.0  # the child that runs it is killed at this one
    memory_mb: int = 300  # what the analysis may add to its child
    render_seconds: float = 8.0
    render_memory_mb: int = 300  # each renderer (poppler) on its own
    render_pixels: int = 2_000_000  # a page is drawn at fewer pixels than this
    max_objects: int = 200_000  # objects read while attributing rewritten ones to pages


class OverBudgetError(Exception):
    """The file is too complex to verify here; str() names the budget."""


class Budget:
    def __init__(self, limits: Limits):
        self.limits = limits
        self.deadline = time.monotonic() + limits.seconds
        self.renders = limits.max_render_pages
        self.objects = limits.max_objects

    def check(self) -> None:
        if time.monotonic() > self.deadline:
            raise OverBudgetError("time")

    def take_renders(self, count: int) -> None:
        self.renders -= count
        if self.renders < 0:
            raise OverBudgetError("pages")
        self.check()

    def take_object(self) -> None:
        self.objects -= 1
        if self.objects < 0:
            raise OverBudgetError("objects")


ROUTINE_KINDS = {"form_filling", "signature_appearance"}
VISIBLE_KINDS = {"page_added", "page_removed", "hidden_content"}
#: Changes whose effect on the page cannot be seen here: never a pass when uncovered.
UNSEEN_KINDS = {"unrendered", "regenerated"}


@dataclass
class Change:
    page: int  # 1-based
    kind: str  # form_filling, signature_appearance, annotation, page_content, page_added…
    bbox: list[float] | None  # x1, y1, x2, y2 in PDF points from the bottom left
    #: Fills a field that already existed (empty) when the first signature was made: the
    #: first signer saw the box this content went into.
    prepared: bool = False


@dataclass
class RevisionReport:
    index: int  # 1-based revision of the file
    signature: str | None  # the signature made in this revision, if any
    covered_by: str | None  # the first intact signature made in it or later
    changes: list[Change] = field(default_factory=list)
    previews: list[dict] = field(default_factory=list)  # page renders for the web page

    @property
    def visible(self) -> bool:
        return any(c.bbox or c.kind in VISIBLE_KINDS for c in self.changes)


@dataclass
class SignatureDetail:
    field: str
    kind: str  # "signature" or "timestamp" (document timestamp)
    revision: int  # 1-based revision the signature closes
    signer: str | None
    organisation: str | None
    identity: str | None  # CCCD / CMND / MST from the subject UID
    signing_time: str | None
    timestamp_time: str | None
    local_time_as_utc: bool  # the signer's software wrote Vietnam time with a Z
    intact: bool
    valid: bool
    trusted: bool
    chain: list[str]
    algorithms: list[str]
    warnings: list[str]
    certification_level: int | None  # DocMDP P (1 no change, 2 forms + signing, 3 + annots)
    error: str | None = None
    fingerprint: str | None = None  # SHA-256 of the signer's certificate
    coverage: str | None = None  # pyHanko's coverage level: ENTIRE_FILE / ENTIRE_REVISION…
    #: Revocation of the signer's certificate, from the answers the file carries (/DSS):
    #: "good", "revoked" (before the time the signature is proven: never valid),
    #: "revoked_since" (valid when signed, revoked later), "unknown" (the certificate names
    #: a responder and the file holds no answer), "not_declared" (it names none).
    revocation: str | None = None
    #: Where the revocation answer came from: "embedded" (the file's /DSS) or "fetched"
    #: (asked now of the certificate's responder, for a trusted chain only).
    revocation_source: str | None = None
    #: The time the signature is proven to have existed (its timestamp), else None.
    proven_at: str | None = None
    #: The validated path (DER, anchor first) of a trusted signer: the only certificates
    #: whose responders the verifier may ask.  Internal: not in the public answer.
    path: list[bytes] = field(default_factory=list, repr=False)


@dataclass
class Explanation:
    verdict: str
    readable: bool
    signatures: list[SignatureDetail] = field(default_factory=list)
    revisions: list[RevisionReport] = field(default_factory=list)
    pages: int | None = None
    notes: list[str] = field(default_factory=list)
    error: str | None = None
    #: Active content the PDF policy found (codes; ``policy.label`` names them).
    content: list[str] = field(default_factory=list)
    #: PAdES baseline level the file reaches: B-B, B-T, B-LT or B-LTA (``long_term_level``).
    long_term: str | None = None

    def to_dict(self, previews: bool = False) -> dict[str, Any]:
        data = asdict(self)
        for signature in data["signatures"]:
            signature.pop("path", None)
        for revision in data["revisions"]:
            if not previews:
                revision.pop("previews", None)
        return data

    def to_json(self) -> str:
        """Everything, to be kept and read back (``from_json``): a copy's explanation is
        shared by every server process through the data folder."""
        data = asdict(self)
        for signature in data["signatures"]:
            signature["path"] = [base64.b64encode(cert).decode() for cert in signature["path"]]
        return json.dumps(data, ensure_ascii=False)

    @classmethod
    def from_json(cls, text: str) -> Explanation:
        data = json.loads(text)
        signatures = [SignatureDetail(**{**s, "path": [base64.b64decode(c) for c in s["path"]]})
                      for s in data.pop("signatures")]
        revisions = [RevisionReport(**{**r, "changes": [Change(**c) for c in r["changes"]]})
                     for r in data.pop("revisions")]
        return cls(signatures=signatures, revisions=revisions, **data)
