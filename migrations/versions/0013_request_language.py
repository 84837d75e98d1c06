"""request language: the language a request was filed in, for its emails

Revision ID: 0013
Revises: 0012
Create Date: 2026-11-29 09:00:00.000000
"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0013'
down_revision = '0012'
branch_labels = None
depends_on = None


def upgrade(engine_name):
    globals()["upgrade_%s" % engine_name]()


def downgrade(engine_name):
    globals()["downgrade_%s" % engine_name]()


def upgrade_():
    # Nullable, no default: requests filed before were all written to in English (None reads
    # as English), and no row is rewritten.
    with op.batch_alter_table('rights_requests', schema=None) as batch_op:
        batch_op.add_column(sa.Column('locale', sa.String(length=8), nullable=True))


def downgrade_():
    with op.batch_alter_table('rights_requests', schema=None) as batch_op:
        batch_op.drop_column('locale')


def upgrade_keystore():
    pass


def downgrade_keystore():
    pass
