"""outbox trace id: the HTTP request (X-Request-ID) whose work queued each message

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-13 09:00:00.000000
"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0015'
down_revision = '0014'
branch_labels = None
depends_on = None


def upgrade(engine_name):
    globals()["upgrade_%s" % engine_name]()


def downgrade(engine_name):
    globals()["downgrade_%s" % engine_name]()


def upgrade_():
    # Nullable, no default: messages queued before carry no trace (the worker logs null for
    # them), and no row is rewritten.
    with op.batch_alter_table('outbox', schema=None) as batch_op:
        batch_op.add_column(sa.Column('trace_id', sa.String(length=64), nullable=True))


def downgrade_():
    with op.batch_alter_table('outbox', schema=None) as batch_op:
        batch_op.drop_column('trace_id')


def upgrade_keystore():
    pass


def downgrade_keystore():
    pass
