"""Reference data every installation needs: roles and the document-type catalogue."""
from __future__ import annotations

from flask import current_app
from sqlalchemy import select

from app.extensions import db
from app.offices.models import DocumentType
from app.transactions import atomic

# (code, Vietnamese name, English name)
DOCUMENT_TYPES = [
    ("CCCD", "Thẻ căn cước / Căn cước công dân", "Identity card"),
    ("KHAISINH", "Giấy khai sinh", "Birth certificate"),
    ("KETHON", "Giấy chứng nhận kết hôn", "Marriage certificate"),
    ("BANGTN", "Bằng tốt nghiệp", "Diploma"),
    ("HOCBA", "Học bạ", "School record"),
    ("GPLX", "Giấy phép lái xe", "Driving licence"),
    ("SODO", "Giấy chứng nhận quyền sử dụng đất", "Land use right certificate"),
    ("DKKD", "Giấy chứng nhận đăng ký doanh nghiệp", "Business registration certificate"),
    ("HOCHIEU", "Hộ chiếu", "Passport"),
    ("KHAC", "Giấy tờ khác", "Other document"),
]


def seed_roles() -> None:
    current_app.appbuilder.sm.create_db()


def seed_reference_data() -> int:
    from app.notifications.services import seed_templates

    seed_roles()
    session = db.session
    with atomic(session):
        existing = set(session.scalars(select(DocumentType.code)))
        created = 0
        for code, name_vi, name_en in DOCUMENT_TYPES:
            if code not in existing:
                session.add(DocumentType(code=code, name_vi=name_vi, name_en=name_en,
                                         active=True))
                created += 1
        created += seed_templates(session)
    return created
