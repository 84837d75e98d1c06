"""linked requests: a request filed again (same person, same right, same records) points at the
earlier open one, and the two are answered together

Revision ID: 0012
Revises: 0011
Create Date: 2026-11-29 07:00:00.000000
"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0012'
down_revision = '0011'
branch_labels = None
depends_on = None


def upgrade(engine_name):
    globals()["upgrade_%s" % engine_name]()


def downgrade(engine_name):
    globals()["downgrade_%s" % engine_name]()


def upgrade_():
    with op.batch_alter_table('rights_requests', schema=None) as batch_op:
        batch_op.add_column(sa.Column('linked_to_id', sa.String(length=36), nullable=True))
        batch_op.create_foreign_key(
            batch_op.f('fk_rights_requests_linked_to_id_rights_requests'),
            'rights_requests', ['linked_to_id'], ['id'],
        )


def downgrade_():
    with op.batch_alter_table('rights_requests', schema=None) as batch_op:
        batch_op.drop_constraint(
            batch_op.f('fk_rights_requests_linked_to_id_rights_requests'), type_='foreignkey'
        )
        batch_op.drop_column('linked_to_id')


def upgrade_keystore():
    pass


def downgrade_keystore():
    pass
