"""authorized agents (Data Rights Protocol): agents, their tokens' hashes, messages seen,
their requests; a request's regime (ccpa: 45-day deadlines)

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
    # Nullable, no default: every request filed before is under the GDPR (None).
    with op.batch_alter_table('rights_requests', schema=None) as batch_op:
        batch_op.add_column(sa.Column('regime', sa.String(length=12), nullable=True))
    op.create_table('drp_requests',
    sa.Column('id', sa.String(length=36), nullable=False),
    sa.Column('agent_id', sa.String(length=100), nullable=False),
    sa.Column('agent_request_id', sa.String(length=200), nullable=True),
    sa.Column('action', sa.String(length=24), nullable=False),
    sa.Column('regime', sa.String(length=24), nullable=False),
    sa.Column('rights_request_id', sa.String(length=36), nullable=True),
    sa.Column('status_callback', sa.String(length=500), nullable=True),
    sa.Column('received_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('status', sa.String(length=20), nullable=True),
    sa.Column('reason', sa.String(length=30), nullable=True),
    sa.Column('last_sent', sa.Text(), nullable=True),
    sa.ForeignKeyConstraint(['agent_id'], ['drp_agents.id'], name=op.f('fk_drp_requests_agent_id_drp_agents')),
    sa.ForeignKeyConstraint(['rights_request_id'], ['rights_requests.id'], name=op.f('fk_drp_requests_rights_request_id_rights_requests')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_drp_requests')),
    sa.UniqueConstraint('rights_request_id', name=op.f('uq_drp_requests_rights_request_id'))
    )
    with op.batch_alter_table('drp_requests', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_drp_requests_agent_id'), ['agent_id'], unique=False)


def downgrade_():
    with op.batch_alter_table('drp_requests', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_drp_requests_agent_id'))
    op.drop_table('drp_requests')
    with op.batch_alter_table('rights_requests', schema=None) as batch_op:
        batch_op.drop_column('regime')
    with op.batch_alter_table('drp_messages_seen', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_drp_messages_seen_expires_at'))
    op.drop_table('drp_messages_seen')
    op.drop_table('drp_agents')


def upgrade_keystore():
    pass


def downgrade_keystore():
    pass
