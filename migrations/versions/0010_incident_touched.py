"""incident touched: every member an incident touched is kept, corrected or decided on their own
request, and each is told once

Revision ID: 0010
Revises: 0009
Create Date: 2026-11-29 03:00:00.000000

``incident_records`` now also holds the records an incident left as a request of the member's
own decided them (``decided_by_request_id``, with no ``corrected_at``), and says when each
member was told (``notified_at``, on all their records). That replaces the incident's apology
cursor over award ids (``incidents.notified_through``): the records it had passed are marked
told on the way up, and the cursor comes back from them on the way down.
"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0010'
down_revision = '0009'
branch_labels = None
depends_on = None


def upgrade(engine_name):
    globals()["upgrade_%s" % engine_name]()


def downgrade(engine_name):
    globals()["downgrade_%s" % engine_name]()


def upgrade_():
    with op.batch_alter_table('incident_records', schema=None) as batch_op:
        batch_op.add_column(sa.Column('decided_by_request_id', sa.String(length=36), nullable=True))
        batch_op.add_column(sa.Column('notified_at', sa.DateTime(timezone=True), nullable=True))
        batch_op.alter_column('corrected_at', existing_type=sa.DateTime(timezone=True), nullable=True)
        batch_op.create_foreign_key(
            batch_op.f('fk_incident_records_decided_by_request_id_rights_requests'),
            'rights_requests', ['decided_by_request_id'], ['id'],
        )
        batch_op.create_index(batch_op.f('ix_incident_records_decided_by_request_id'), ['decided_by_request_id'], unique=False)
        batch_op.create_index('ix_incident_records_incident_notified', ['incident_id', 'notified_at'], unique=False)

    # Members the old cursor had passed were told: their records say so now.
    op.execute(
        """
        UPDATE incident_records SET notified_at = (
            SELECT coalesce(incidents.notified_at, incidents.corrected_at, incidents.opened_at)
            FROM incidents WHERE incidents.id = incident_records.incident_id
        )
        WHERE record_id <= (
            SELECT incidents.notified_through FROM incidents
            WHERE incidents.id = incident_records.incident_id
        )
        """
    )
    # Not in batch mode: on SQLite that copies the table, and dropping the old one breaks the
    # foreign keys of the incident's records. SQLite (3.35+) drops a plain column in place.
    op.drop_column('incidents', 'notified_through')


def downgrade_():
    with op.batch_alter_table('incidents', schema=None) as batch_op:
        batch_op.add_column(sa.Column('notified_through', sa.Integer(), server_default='0', nullable=False))
    op.execute(
        """
        UPDATE incidents SET notified_through = coalesce((
            SELECT max(record_id) FROM incident_records
            WHERE incident_records.incident_id = incidents.id
            AND incident_records.notified_at IS NOT NULL
        ), 0)
        """
    )
    # The code before 0010 knows only records an incident corrected.
    op.execute("DELETE FROM incident_records WHERE corrected_at IS NULL")
    with op.batch_alter_table('incident_records', schema=None) as batch_op:
        batch_op.drop_index('ix_incident_records_incident_notified')
        batch_op.drop_index(batch_op.f('ix_incident_records_decided_by_request_id'))
        batch_op.drop_constraint(batch_op.f('fk_incident_records_decided_by_request_id_rights_requests'), type_='foreignkey')
        batch_op.alter_column('corrected_at', existing_type=sa.DateTime(timezone=True), nullable=False)
        batch_op.drop_column('notified_at')
        batch_op.drop_column('decided_by_request_id')


def upgrade_keystore():
    pass


def downgrade_keystore():
    pass
