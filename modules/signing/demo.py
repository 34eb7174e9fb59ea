"""Demo signing: a demo PKI, a key per demo leader and per commune seal, and transparent
signature / seal images (drawn here, so no file has to be shipped).

The two demo leaders sign the two ways a leader signs: leader.a with a key the server holds
(server custody, chosen by the administrator) and one-time codes from ``DEMO_CODE_SECRET``
(printed in the README, so a tester or a script can make codes); leader.b with the plugin
on their own computer — SaoY knows only the certificate, whose key is in
``pki/served/leader-leader.b.p12`` (``make demo``) for a tester's own token (SoftHSM) and
SaoY's signer."""
from __future__ import annotations

import hashlib
import io
import math
from collections.abc import Callable
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding
from flask import current_app
from PIL import Image, ImageDraw, ImageFont
from sqlalchemy import select

from app.demo import OFFICE_A, OFFICE_B
from app.extensions import db
from app.offices.models import Office
from app.storage import file_store
from app.transactions import atomic
from app.users import StaffUser
from modules.signing import keys, served_pki
from modules.signing.models import Authority, SecondFactor, SignerProfile, SigningKey
from modules.signing.pki import DemoPki, IssuedKey
from modules.signing.second_factor import encrypt
from modules.signing.served_pki import Holder

LEADERS = {"leader.a": ("Phó Chủ tịch", "CCCD:079190000011"),
           "leader.b": ("Chủ tịch", "CCCD:079185000022")}
#: What each demo leader's title means in law (the office administrator records it).
AUTHORITIES = {"Phó Chủ tịch": Authority.vice_chairman, "Chủ tịch": Authority.chairman}
#: The leader whose personal key the server holds (the other signs with the plugin).
SERVER_CUSTODY = "leader.a"
#: leader.a's one-time-code secret in the demo (base32, as authenticator apps take it).
DEMO_CODE_SECRET = "SAOYDEMOLEADERAKYSOCHUNGTHUCXXXY"


def signature_png(name: str) -> bytes:
    """A blue handwritten-like stroke with the name under it (transparent)."""
    img = Image.new("RGBA", (600, 240), (0, 0, 0, 0))
    draw = ImageDraw.Draw(img)
    points = [(40 + x * 5.2, 120 - 55 * math.sin(x / 9.0) * math.exp(-x / 160)) for x in range(100)]
    draw.line(points, fill=(20, 45, 190, 255), width=7, joint="curve")
    draw.line([(60, 170), (540, 150)], fill=(20, 45, 190, 255), width=4)
    return _png(img)


def seal_png(office_name: str) -> bytes:
    """A red round seal with a star (transparent), drawn at 4× and scaled down."""
    size = 1200
    img = Image.new("RGBA", (size, size), (0, 0, 0, 0))
    draw = ImageDraw.Draw(img)
    red = (210, 20, 25, 235)
    draw.ellipse([20, 20, size - 20, size - 20], outline=red, width=40)
    draw.ellipse([150, 150, size - 150, size - 150], outline=red, width=16)
    cx = cy = size / 2
    star = []
    for i in range(10):
        r = 170 if i % 2 == 0 else 70
        a = -math.pi / 2 + i * math.pi / 5
        star.append((cx + r * math.cos(a), cy + r * math.sin(a)))
    draw.polygon(star, fill=red)
    try:
        font_path = Path(current_app.config["FONT_DIR"]) / "NotoSerif-Bold.ttf"
        font = ImageFont.truetype(str(font_path), 70)
        text = office_name.upper()
        width = draw.textlength(text, font=font)
        draw.text((cx - width / 2, cy + 220), text, font=font, fill=red)
    except OSError:
        pass
    return _png(img.resize((300, 300), Image.LANCZOS))


def _png(img: Image.Image) -> bytes:
    out = io.BytesIO()
    img.save(out, "PNG")
    return out.getvalue()


def load() -> int:
    """Register the demo keys as the administrator would (keystore import, binding) and
    give each demo leader and commune seal a signer profile; idempotent."""
    admin = db.session.scalars(select(StaffUser).where(StaffUser.username == "admin")).one()
    owners = []
    for code in (OFFICE_A, OFFICE_B):
        office = db.session.scalars(select(Office).where(Office.code == code)).one()
        owners.append((Holder(f"seal-{code}", office.name, office.name), office, None, None,
                       seal_png(office.name)))
    for username, (title, uid) in LEADERS.items():
        user = db.session.scalars(select(StaffUser).where(StaffUser.username == username)).one()
        name = f"{user.first_name} {user.last_name}"
        owners.append((Holder(f"leader-{username}", name, user.office.name, uid), user.office,
                       user, title, signature_png(name)))
    issue, passphrase = demo_pki([holder for holder, *_ in owners])
    created = 0
    with atomic(db.session):
        for holder, office, user, title, image in owners:
            created += _bind(issue(holder), passphrase, admin, office, user, title, image)
        created += _demo_custody(admin)
    return created


def demo_pki(holders: list[Holder]) -> tuple[Callable[[Holder], IssuedKey], bytes]:
    """The demo PKI: with SAOY_DEMO_PKI_URL (``make demo``) one whose OCSP, CRL and TSA
    answer there (``saoy demo-pki`` serves them), so demo copies are complete; without it
    (the tests' demo world) certificates that name no responder.  Its root (and issuing
    CA) is trusted in demo mode."""
    folder = Path(current_app.config["DATA_DIR"]) / "pki"
    url = current_app.config.get("DEMO_PKI_URL")
    if not url:
        pki = DemoPki(folder)
        return (lambda h: pki.issue(h.label, h.common_name, h.organisation, h.uid)), \
            pki.passphrase
    served, passphrase = served_pki.demo(served_pki.demo_folder(current_app.config["DATA_DIR"]),
                                         url, holders)
    served.trust_file(folder / "demo-root.pem")
    return (lambda h: served.issue(h.label, passphrase)), passphrase


def _demo_custody(admin) -> int:
    """leader.a: server custody chosen by the administrator, a confirmed code."""
    leader = db.session.scalars(select(StaffUser).where(
        StaffUser.username == SERVER_CUSTODY)).one()
    key = db.session.scalars(select(SigningKey).where(SigningKey.user_id == leader.id,
                                                      SigningKey.active.is_(True))).first()
    if key is None or not key.on_server:
        return 0
    keys.choose_server_custody(db.session, admin, key.id)
    if db.session.scalar(select(SecondFactor.id).where(SecondFactor.user_id == leader.id)):
        return 0
    db.session.add(SecondFactor(user_id=leader.id, secret=encrypt(DEMO_CODE_SECRET),
                                confirmed_at=key.server_custody_at, confirmed_by_id=admin.id))
    return 1


def _bind(issued: IssuedKey, passphrase: bytes, admin, office, user, title,
          image: bytes) -> int:
    fingerprint = hashlib.sha256(x509.load_pem_x509_certificate(
        issued.cert_pem_path.read_bytes()).public_bytes(Encoding.DER)).hexdigest()
    key = db.session.scalars(select(SigningKey).where(
        SigningKey.fingerprint == fingerprint)).first()
    if key is None and user is not None and user.username != SERVER_CUSTODY:
        key = keys.announce_agent_key(db.session, user, issued.cert_der)  # the own token
        keys.approve_key(db.session, admin, key.id)
    elif key is None:
        key = keys.register_pkcs12(
            db.session, admin, office_id=office.id, user_id=user.id if user else None,
            name=f"Demo {user.username if user else 'seal ' + office.code}",
            data=issued.p12_path.read_bytes(), passphrase=passphrase)
    user_id = user.id if user else None
    profile = db.session.scalars(select(SignerProfile).where(
        SignerProfile.office_id == office.id, SignerProfile.user_id.is_(None) if user is None
        else SignerProfile.user_id == user_id)).first()
    if profile is None:  # (approving an own-token key made one already: complete it)
        profile = SignerProfile(office_id=office.id, user_id=user_id, active=True)
        db.session.add(profile)
    authority = AUTHORITIES.get(title)
    if profile.key_id is not None and profile.title == title and profile.image_sha256 and \
            profile.authority is authority:
        return 0
    profile.key = profile.key or key
    profile.title = profile.title or title
    profile.authority = profile.authority or authority
    profile.image_sha256 = profile.image_sha256 or file_store().put_bytes(image)
    return 1
