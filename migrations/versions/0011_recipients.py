"""recipients: which data-map recipient a webhook subscriber speaks for, and Art. 19 notices
an officer records by hand for recipients no subscriber speaks for

Revision ID: 0011
Revises: 0010
Create Date: 2026-11-29 06:00:00.000000
"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0011'
down_revision = '0010'
branch_labels = None
depends_on = None


def upgrade(engine_name):
    globals()["upgrade_%s" % engine_name]()


def downgrade(engine_name):
    globals()["downgrade_%s" % engine_name]()


def upgrade_():
    with op.batch_alter_table('subscribers', schema=None) as batch_op:
        batch_op.add_column(sa.Column('recipient', sa.String(length=40), nullable=True))
        batch_op.create_index(batch_op.f('ix_subscribers_recipient'), ['recipient'], unique=False)

    op.create_table(
        'recipient_notices',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('request_id', sa.String(length=36), nullable=False),
        sa.Column('recipient', sa.String(length=40), nullable=False),
        sa.Column('how', sa.String(length=300), nullable=False),
        sa.Column('told_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('recorded_by', sa.String(length=120), nullable=False),
        sa.Column('recorded_at', sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ['request_id'], ['rights_requests.id'],
            name=op.f('fk_recipient_notices_request_id_rights_requests'),
        ),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_recipient_notices')),
        sa.UniqueConstraint('request_id', 'recipient', name='uq_recipient_notices_request'),
    )


def downgrade_():
    op.drop_table('recipient_notices')
    with op.batch_alter_table('subscribers', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_subscribers_recipient'))
        batch_op.drop_column('recipient')


def upgrade_keystore():
    pass


def downgrade_keystore():
    pass
