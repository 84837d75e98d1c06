"""authorized agents (Data Rights Protocol): agents, their tokens' hashes, messages seen

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-27 09:00:00.000000
"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0017'
down_revision = '0016'
branch_labels = None
depends_on = None


def upgrade(engine_name):
    globals()["upgrade_%s" % engine_name]()


def downgrade(engine_name):
    globals()["downgrade_%s" % engine_name]()


def upgrade_():
    op.create_table('drp_agents',
    sa.Column('id', sa.String(length=100), nullable=False),
    sa.Column('name', sa.String(length=120), nullable=False),
    sa.Column('verify_key', sa.LargeBinary(length=32), nullable=False),
    sa.Column('token_hash', sa.String(length=64), nullable=True),
    sa.Column('paired_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('active', sa.Boolean(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('created_by', sa.String(length=120), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_drp_agents'))
    )
    op.create_table('drp_messages_seen',
    sa.Column('digest', sa.String(length=64), nullable=False),
    sa.Column('expires_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('digest', name=op.f('pk_drp_messages_seen'))
    )
    with op.batch_alter_table('drp_messages_seen', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_drp_messages_seen_expires_at'), ['expires_at'], unique=False)


def downgrade_():
    with op.batch_alter_table('drp_messages_seen', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_drp_messages_seen_expires_at'))
    op.drop_table('drp_messages_seen')
    op.drop_table('drp_agents')


def upgrade_keystore():
    pass


def downgrade_keystore():
    pass
