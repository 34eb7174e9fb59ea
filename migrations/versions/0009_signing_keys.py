"""signing keys bound to offices and leaders; verified citizens

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-02 03:09:16.593793

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0009'
down_revision = '0008'
branch_labels = None
depends_on = None


def upgrade():
    # Key material leaves the signer profiles: the system administrator registers it
    # (sign_key) and profiles point at it.  Profiles of an upgraded database stay unbound
    # until their keys are registered (signing says so); nothing else is lost.
    op.create_table('sign_key',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=True),
    sa.Column('kind', sa.Enum('pkcs12', 'pkcs11', 'agent', name='sign_key_kind', native_enum=False, length=16), nullable=False),
    sa.Column('name', sa.String(length=128), nullable=False),
    sa.Column('token_label', sa.String(length=64), nullable=True),
    sa.Column('key_label', sa.String(length=64), nullable=True),
    sa.Column('cert_label', sa.String(length=64), nullable=True),
    sa.Column('fingerprint', sa.String(length=64), nullable=False),
    sa.Column('subject', sa.String(length=255), nullable=True),
    sa.Column('organisation', sa.String(length=255), nullable=True),
    sa.Column('identity', sa.String(length=64), nullable=True),
    sa.Column('not_before', sa.DateTime(), nullable=True),
    sa.Column('not_after', sa.DateTime(), nullable=True),
    sa.Column('active', sa.Boolean(), nullable=False),
    sa.Column('registered_by_id', sa.Integer(), nullable=True),
    sa.Column('registered_at', sa.DateTime(), nullable=False),
    sa.Column('approved_by_id', sa.Integer(), nullable=True),
    sa.Column('approved_at', sa.DateTime(), nullable=True),
    sa.Column('office_id', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['approved_by_id'], ['ab_user.id'], ),
    sa.ForeignKeyConstraint(['office_id'], ['org_office.id'], ),
    sa.ForeignKeyConstraint(['registered_by_id'], ['ab_user.id'], ),
    sa.ForeignKeyConstraint(['user_id'], ['ab_user.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('fingerprint')
    )
    with op.batch_alter_table('sign_key', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_sign_key_office_id'), ['office_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_sign_key_user_id'), ['user_id'], unique=False)

    with op.batch_alter_table('citizen_account', schema=None) as batch_op:
        batch_op.add_column(sa.Column('verified_at', sa.DateTime(), nullable=True))
        batch_op.add_column(sa.Column('verified_by_id', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('verified_via', sa.String(length=16), nullable=True))
        batch_op.create_foreign_key('fk_citizen_account_verified_by', 'ab_user', ['verified_by_id'], ['id'])

    with op.batch_alter_table('sign_signer', schema=None) as batch_op:
        batch_op.add_column(sa.Column('key_id', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('tsa_name', sa.String(length=64), nullable=True))
        batch_op.create_foreign_key('fk_sign_signer_key', 'sign_key', ['key_id'], ['id'])
        batch_op.drop_column('pkcs11_key_label')
        batch_op.drop_column('tsa_url')
        batch_op.drop_column('pkcs11_cert_label')
        batch_op.drop_column('pkcs11_token_label')
        batch_op.drop_column('kind')
        batch_op.drop_column('certificate_sha256')
        batch_op.drop_column('pkcs12_path')



def downgrade():
    with op.batch_alter_table('sign_signer', schema=None) as batch_op:
        batch_op.add_column(sa.Column('pkcs12_path', sa.VARCHAR(length=500), nullable=True))
        batch_op.add_column(sa.Column('certificate_sha256', sa.VARCHAR(length=64), nullable=True))
        batch_op.add_column(sa.Column('kind', sa.VARCHAR(length=16), nullable=False,
                                      server_default='pkcs12'))
        batch_op.add_column(sa.Column('pkcs11_token_label', sa.VARCHAR(length=64), nullable=True))
        batch_op.add_column(sa.Column('pkcs11_cert_label', sa.VARCHAR(length=64), nullable=True))
        batch_op.add_column(sa.Column('tsa_url', sa.VARCHAR(length=500), nullable=True))
        batch_op.add_column(sa.Column('pkcs11_key_label', sa.VARCHAR(length=64), nullable=True))
        batch_op.drop_constraint('fk_sign_signer_key', type_='foreignkey')
        batch_op.drop_column('tsa_name')
        batch_op.drop_column('key_id')

    with op.batch_alter_table('citizen_account', schema=None) as batch_op:
        batch_op.drop_constraint('fk_citizen_account_verified_by', type_='foreignkey')
        batch_op.drop_column('verified_via')
        batch_op.drop_column('verified_by_id')
        batch_op.drop_column('verified_at')

    with op.batch_alter_table('sign_key', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_sign_key_user_id'))
        batch_op.drop_index(batch_op.f('ix_sign_key_office_id'))

    op.drop_table('sign_key')
