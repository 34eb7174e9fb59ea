"""The leader signs on their own computer (one-time tokens for the plugin), server custody
chosen by the administrator, the leader's one-time codes.

Revision ID: 0013
Revises: 0012
"""
import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("sign_external_job", schema=None) as batch_op:
        batch_op.add_column(sa.Column("download_token", sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column("upload_token", sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column("expires_at", sa.DateTime(), nullable=True))
        batch_op.add_column(sa.Column("downloaded_at", sa.DateTime(), nullable=True))
        batch_op.add_column(sa.Column("batch", sa.String(length=32), nullable=True))
        batch_op.alter_column("document_digest", existing_type=sa.String(length=128),
                              nullable=True)
        batch_op.alter_column("reserved_start", existing_type=sa.Integer(), nullable=True)
        batch_op.alter_column("reserved_end", existing_type=sa.Integer(), nullable=True)
        batch_op.alter_column("signed_attrs", existing_type=sa.Text(), nullable=True)
        batch_op.create_unique_constraint("uq_sign_external_job_download_token",
                                          ["download_token"])
        batch_op.create_unique_constraint("uq_sign_external_job_upload_token",
                                          ["upload_token"])
    with op.batch_alter_table("sign_document", schema=None) as batch_op:
        batch_op.add_column(sa.Column("leader_field", sa.String(length=64), nullable=True))
    with op.batch_alter_table("sign_key", schema=None) as batch_op:
        batch_op.add_column(sa.Column("server_custody_at", sa.DateTime(), nullable=True))
        batch_op.add_column(sa.Column("server_custody_by_id", sa.Integer(), nullable=True))
        batch_op.create_foreign_key("fk_sign_key_server_custody_by", "ab_user",
                                    ["server_custody_by_id"], ["id"])
    op.create_table(
        "sign_second_factor",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("secret", sa.Text(), nullable=False),
        sa.Column("enrolled_at", sa.DateTime(), nullable=False),
        sa.Column("confirmed_at", sa.DateTime(), nullable=True),
        sa.Column("confirmed_by_id", sa.Integer(), nullable=True),
        sa.Column("last_counter", sa.Integer(), nullable=True),
        sa.Column("session_until", sa.DateTime(), nullable=True),
        sa.Column("session_stamp", sa.DateTime(), nullable=True),
        sa.Column("failures", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("locked_until", sa.DateTime(), nullable=True),
        sa.ForeignKeyConstraint(["confirmed_by_id"], ["ab_user.id"]),
        sa.ForeignKeyConstraint(["user_id"], ["ab_user.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("user_id"),
    )


def downgrade():
    op.drop_table("sign_second_factor")
    with op.batch_alter_table("sign_key", schema=None) as batch_op:
        batch_op.drop_constraint("fk_sign_key_server_custody_by", type_="foreignkey")
        batch_op.drop_column("server_custody_by_id")
        batch_op.drop_column("server_custody_at")
    with op.batch_alter_table("sign_document", schema=None) as batch_op:
        batch_op.drop_column("leader_field")
    with op.batch_alter_table("sign_external_job", schema=None) as batch_op:
        batch_op.drop_constraint("uq_sign_external_job_upload_token", type_="unique")
        batch_op.drop_constraint("uq_sign_external_job_download_token", type_="unique")
        batch_op.drop_column("batch")
        batch_op.drop_column("downloaded_at")
        batch_op.drop_column("expires_at")
        batch_op.drop_column("upload_token")
        batch_op.drop_column("download_token")
