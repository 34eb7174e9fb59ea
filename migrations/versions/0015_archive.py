"""Delivered copies are PAdES B-LTA: when each one's archive timestamp must be renewed.

Revision ID: 0015
Revises: 0014
"""
import sqlalchemy as sa
from alembic import op

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("sign_document", schema=None) as batch_op:
        batch_op.add_column(sa.Column("archive_until", sa.DateTime(), nullable=True))
        batch_op.create_index("ix_sign_document_archive_until", ["archive_until"])


def downgrade():
    with op.batch_alter_table("sign_document", schema=None) as batch_op:
        batch_op.drop_index("ix_sign_document_archive_until")
        batch_op.drop_column("archive_until")
