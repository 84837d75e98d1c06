"""shred epochs: subject keys wrapped under an epoch's key, epochs recorded in the key store

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-29 01:00:00.000000

Existing subject keys keep ``epoch_id`` NULL (wrapped under the key-encryption key); the first
shred (the worker's, or ``flask keys shred``) re-wraps them into the current epoch in batches,
resumably, like any retiring epoch's.
"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0009'
down_revision = '0008'
branch_labels = None
depends_on = None


def upgrade(engine_name):
    globals()["upgrade_%s" % engine_name]()


def downgrade(engine_name):
    globals()["downgrade_%s" % engine_name]()


def upgrade_():
    pass


def downgrade_():
    pass


def upgrade_keystore():
    op.create_table(
        'key_epochs',
        sa.Column('id', sa.String(length=40), nullable=False),
        sa.Column('state', sa.String(length=10), nullable=False),
        sa.Column('backend', sa.String(length=10), nullable=False),
        sa.Column('started_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('ends_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('retiring_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('destroyed_at', sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_key_epochs')),
    )
    with op.batch_alter_table('key_epochs', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_key_epochs_state'), ['state'], unique=False)

    with op.batch_alter_table('subject_keys', schema=None) as batch_op:
        batch_op.add_column(sa.Column('epoch_id', sa.String(length=40), nullable=True))
        batch_op.create_index('ix_subject_keys_epoch_id_subject_id', ['epoch_id', 'subject_id'], unique=False)


def downgrade_keystore():
    # Keys wrapped under an epoch's key cannot be read by the code before epochs: refuse
    # rather than make every subject unreadable.
    wrapped = op.get_bind().execute(
        sa.text("SELECT count(*) FROM subject_keys WHERE epoch_id IS NOT NULL")
    ).scalar()
    if wrapped:
        raise RuntimeError(
            f"{wrapped} subject key(s) are wrapped under shred epochs; the code before 0009 "
            "cannot read them. Downgrading would make every such subject unreadable."
        )
    with op.batch_alter_table('subject_keys', schema=None) as batch_op:
        batch_op.drop_index('ix_subject_keys_epoch_id_subject_id')
        batch_op.drop_column('epoch_id')

    with op.batch_alter_table('key_epochs', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_key_epochs_state'))

    op.drop_table('key_epochs')
