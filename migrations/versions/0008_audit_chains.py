"""audit: one hash chain per office (chain 0: platform and the earlier global chain)

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-01 20:00:00

"""
from alembic import op
import sqlalchemy as sa


revision = '0008'
down_revision = '0007'
branch_labels = None
depends_on = None

# SQLite names the unnamed unique constraint of 0001 through this convention.
_SQLITE_NAMES = {"uq": "uq_%(table_name)s_%(column_0_name)s"}


def _old_unique_name(bind) -> str:
    return 'audit_event_seq_key' if bind.dialect.name == 'postgresql' else 'uq_audit_event_seq'


def upgrade():
    bind = op.get_bind()
    # The single head of the global chain becomes chain 0; its events stay valid.
    op.execute("UPDATE audit_head SET id = 0 WHERE id = 1")
    with op.batch_alter_table('audit_event', naming_convention=_SQLITE_NAMES) as batch_op:
        batch_op.add_column(sa.Column('chain', sa.Integer(), nullable=False,
                                      server_default='0'))
        batch_op.drop_constraint(_old_unique_name(bind), type_='unique')
        batch_op.create_unique_constraint('uq_audit_event_chain_seq', ['chain', 'seq'])
        batch_op.create_index(batch_op.f('ix_audit_event_object_id'), ['object_id'],
                              unique=False)
    with op.batch_alter_table('audit_event') as batch_op:
        batch_op.alter_column('chain', server_default=None)


def downgrade():
    bind = op.get_bind()
    others = bind.execute(sa.text("SELECT count(*) FROM audit_event WHERE chain <> 0")).scalar()
    if others:
        raise RuntimeError("office audit chains hold events: they cannot be merged back into "
                           "one global chain without re-hashing; restore a backup instead")
    with op.batch_alter_table('audit_event', naming_convention=_SQLITE_NAMES) as batch_op:
        batch_op.drop_index(batch_op.f('ix_audit_event_object_id'))
        batch_op.drop_constraint('uq_audit_event_chain_seq', type_='unique')
        batch_op.create_unique_constraint(_old_unique_name(bind), ['seq'])
        batch_op.drop_column('chain')
    op.execute("DELETE FROM audit_head WHERE id <> 0")
    op.execute("UPDATE audit_head SET id = 1 WHERE id = 0")
