"""One number sequence per office, year and register type, shared by its books (two books
open in one year both gave number 1).  Rows are made on first use from the entries.

Revision ID: 0016
Revises: 0015
"""
import sqlalchemy as sa
from alembic import op

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "reg_sequence",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("year", sa.Integer(), nullable=False),
        sa.Column("type_symbol", sa.String(length=32), nullable=False),
        sa.Column("next_number", sa.Integer(), nullable=False),
        sa.Column("office_id", sa.Integer(), nullable=False),
        sa.CheckConstraint("next_number >= 1", name="ck_reg_sequence_next"),
        sa.ForeignKeyConstraint(["office_id"], ["org_office.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("office_id", "year", "type_symbol", name="uq_reg_sequence"),
    )
    with op.batch_alter_table("reg_sequence", schema=None) as batch_op:
        batch_op.create_index("ix_reg_sequence_office_id", ["office_id"], unique=False)


def downgrade():
    with op.batch_alter_table("reg_sequence", schema=None) as batch_op:
        batch_op.drop_index("ix_reg_sequence_office_id")
    op.drop_table("reg_sequence")
