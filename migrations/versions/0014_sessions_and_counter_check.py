"""Sessions kept by the server; wrong passwords counted per account and address; the
counter check's one-time code.

Revision ID: 0014
Revises: 0013
"""
import sqlalchemy as sa
from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "auth_session",
        sa.Column("key_hash", sa.String(length=64), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=True),
        sa.Column("data", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("expires_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("key_hash", name="pk_auth_session"),
    )
    op.create_index("ix_auth_session_user_id", "auth_session", ["user_id"])
    op.create_index("ix_auth_session_expires_at", "auth_session", ["expires_at"])
    op.create_table(
        "auth_login_failure",
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("address", sa.String(length=64), nullable=False),
        sa.Column("failures", sa.Integer(), nullable=False),
        sa.Column("locked_until", sa.DateTime(), nullable=True),
        sa.Column("last_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(["user_id"], ["ab_user.id"], ondelete="CASCADE",
                                name="fk_auth_login_failure_user_id_ab_user"),
        sa.PrimaryKeyConstraint("user_id", "address", name="pk_auth_login_failure"),
    )
    op.create_index("ix_auth_login_failure_last_at", "auth_login_failure", ["last_at"])
    with op.batch_alter_table("citizen_account", schema=None) as batch_op:
        batch_op.add_column(sa.Column("counter_code_digest", sa.String(length=64),
                                      nullable=True))
        batch_op.add_column(sa.Column("counter_code_expires_at", sa.DateTime(), nullable=True))


def downgrade():
    with op.batch_alter_table("citizen_account", schema=None) as batch_op:
        batch_op.drop_column("counter_code_expires_at")
        batch_op.drop_column("counter_code_digest")
    op.drop_index("ix_auth_login_failure_last_at", table_name="auth_login_failure")
    op.drop_table("auth_login_failure")
    op.drop_index("ix_auth_session_expires_at", table_name="auth_session")
    op.drop_index("ix_auth_session_user_id", table_name="auth_session")
    op.drop_table("auth_session")
