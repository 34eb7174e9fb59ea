"""Remote signing (CSC): a leader's key at a provider — its provider and credential id.

Revision ID: 0018
Revises: 0017
"""
import sqlalchemy as sa
from alembic import op

revision = "0018"
down_revision = "0017"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("sign_key", schema=None) as batch_op:
        batch_op.add_column(sa.Column("remote_provider", sa.String(length=64)))
        batch_op.add_column(sa.Column("remote_credential", sa.String(length=255)))


def downgrade():
    with op.batch_alter_table("sign_key", schema=None) as batch_op:
        batch_op.drop_column("remote_credential")
        batch_op.drop_column("remote_provider")
