"""The rules of 2025 as data: a leader's authority to certify (chairman, vice-chairman, or
an official authorised by a decision, Nghị định 280/2025), and the fee schedule and the
attestation wording versioned by the date they take effect.  Existing leader profiles get
their authority from their printed title where it says so.

Revision ID: 0017
Revises: 0016
"""
import sqlalchemy as sa
from alembic import op

revision = "0017"
down_revision = "0016"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("sign_signer", schema=None) as batch_op:
        batch_op.add_column(sa.Column("authority", sa.Enum(
            "chairman", "vice_chairman", "authorised", name="sign_authority",
            native_enum=False, length=16), nullable=True))
        batch_op.add_column(sa.Column("authority_decision", sa.String(length=64)))
        batch_op.add_column(sa.Column("authority_decision_date", sa.Date()))
        batch_op.add_column(sa.Column("authority_scope", sa.String(length=255)))
        batch_op.add_column(sa.Column("authority_from", sa.Date()))
        batch_op.add_column(sa.Column("authority_until", sa.Date()))
    signer = sa.table("sign_signer", sa.column("user_id", sa.Integer),
                      sa.column("title", sa.String), sa.column("authority", sa.String))
    title = sa.func.lower(signer.c.title)
    op.execute(signer.update().where(signer.c.user_id.isnot(None),
                                     title.like("%phó chủ tịch%")).values(
        authority="vice_chairman"))
    op.execute(signer.update().where(signer.c.user_id.isnot(None), signer.c.authority.is_(None),
                                     title.like("%chủ tịch%")).values(authority="chairman"))
    op.create_table(
        "copy_fee_schedule",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("effective_from", sa.Date(), nullable=False),
        sa.Column("first_pages", sa.Integer(), nullable=False),
        sa.Column("first_page_rate", sa.Integer(), nullable=False),
        sa.Column("later_page_rate", sa.Integer(), nullable=False),
        sa.Column("cap_per_copy", sa.Integer(), nullable=False),
        sa.Column("legal_basis", sa.String(length=255), nullable=False),
        sa.CheckConstraint("first_pages >= 0 AND first_page_rate >= 0 AND "
                           "later_page_rate >= 0 AND cap_per_copy >= 0",
                           name="ck_copy_fee_schedule_amounts"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("effective_from"),
    )
    op.create_table(
        "sign_attestation_wording",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("effective_from", sa.Date(), nullable=False),
        sa.Column("sentence", sa.Text(), nullable=False),
        sa.Column("signer_heading", sa.String(length=128), nullable=False),
        sa.Column("signer_note", sa.String(length=255), nullable=False),
        sa.Column("legal_basis", sa.String(length=255), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("effective_from"),
    )


def downgrade():
    op.drop_table("sign_attestation_wording")
    op.drop_table("copy_fee_schedule")
    with op.batch_alter_table("sign_signer", schema=None) as batch_op:
        for column in ("authority_until", "authority_from", "authority_scope",
                       "authority_decision_date", "authority_decision", "authority"):
            batch_op.drop_column(column)
