"""Demo signing: a demo PKI, a PKCS#12 key per demo leader and per commune seal, and
transparent signature / seal images (drawn here, so no file has to be shipped)."""
from __future__ import annotations

import io
import math
from pathlib import Path

from flask import current_app
from PIL import Image, ImageDraw, ImageFont
from sqlalchemy import select

from app.demo import OFFICE_A, OFFICE_B
from app.extensions import db
from app.offices.models import Office
from app.storage import file_store
from app.users import StaffUser
from modules.signing.models import SignerKind, SignerProfile
from modules.signing.pki import DemoPki

LEADERS = {"leader.a": ("Phó Chủ tịch", "CCCD:079190000011"),
           "leader.b": ("Chủ tịch", "CCCD:079185000022")}


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
    pki = DemoPki(Path(current_app.config["DATA_DIR"]) / "pki")
    store = file_store()
    created = 0
    for code in (OFFICE_A, OFFICE_B):
        office = db.session.scalars(select(Office).where(Office.code == code)).one()
        if not db.session.scalars(select(SignerProfile).where(
                SignerProfile.office_id == office.id, SignerProfile.user_id.is_(None))).first():
            key = pki.issue(f"seal-{code}", office.name, office.name)
            db.session.add(SignerProfile(office_id=office.id, user_id=None,
                                         kind=SignerKind.pkcs12, pkcs12_path=str(key.p12_path),
                                         image_sha256=store.put_bytes(seal_png(office.name)),
                                         active=True))
            created += 1
    for username, (title, uid) in LEADERS.items():
        user = db.session.scalars(select(StaffUser).where(StaffUser.username == username)).one()
        if db.session.scalars(select(SignerProfile).where(
                SignerProfile.user_id == user.id)).first():
            continue
        name = f"{user.first_name} {user.last_name}"
        key = pki.issue(f"leader-{username}", name, user.office.name, uid)
        db.session.add(SignerProfile(office_id=user.office_id, user_id=user.id,
                                     kind=SignerKind.pkcs12, pkcs12_path=str(key.p12_path),
                                     title=title, image_sha256=store.put_bytes(signature_png(name)),
                                     active=True))
        created += 1
    db.session.commit()
    return created
