"""Remote signing approved in the provider's app: a job's waiting revision and the
provider's transaction.

Revision ID: 0019
Revises: 0018
"""
import sqlalchemy as sa
from alembic import op

revision = "0019"
down_revision = "0018"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("sign_external_job", schema=None) as batch_op:
        batch_op.add_column(sa.Column("pending_sha256", sa.String(length=64)))
        batch_op.add_column(sa.Column("remote_transaction", sa.String(length=160)))
        batch_op.create_unique_constraint("uq_sign_external_job_remote_transaction",
                                          ["remote_transaction"])


def downgrade():
    with op.batch_alter_table("sign_external_job", schema=None) as batch_op:
        batch_op.drop_constraint("uq_sign_external_job_remote_transaction", type_="unique")
        batch_op.drop_column("remote_transaction")
        batch_op.drop_column("pending_sha256")
