"""transparency log: leaves, complete subtrees' hashes, signed checkpoints, and the queue

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-20 09:00:00.000000
"""
import hashlib

from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0016'
down_revision = '0015'
branch_labels = None
depends_on = None

LogIndex = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade(engine_name):
    globals()["upgrade_%s" % engine_name]()


def downgrade(engine_name):
    globals()["downgrade_%s" % engine_name]()


def upgrade_():
    pass


def downgrade_():
    pass


def upgrade_keystore():
    pending = op.create_table('tlog_pending',
    sa.Column('id', LogIndex, autoincrement=True, nullable=False),
    sa.Column('leaf_hash', sa.LargeBinary(length=32), nullable=False),
    sa.Column('kind', sa.String(length=20), nullable=False),
    sa.Column('queued_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_tlog_pending'))
    )
    op.create_table('tlog_leaves',
    sa.Column('index', LogIndex, autoincrement=False, nullable=False),
    sa.Column('leaf_hash', sa.LargeBinary(length=32), nullable=False),
    sa.Column('kind', sa.String(length=20), nullable=False),
    sa.Column('appended_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('index', name=op.f('pk_tlog_leaves')),
    sa.UniqueConstraint('leaf_hash', name=op.f('uq_tlog_leaves_leaf_hash'))
    )
    op.create_table('tlog_nodes',
    sa.Column('level', sa.SmallInteger(), autoincrement=False, nullable=False),
    sa.Column('idx', sa.BigInteger(), autoincrement=False, nullable=False),
    sa.Column('hash', sa.LargeBinary(length=32), nullable=False),
    sa.PrimaryKeyConstraint('level', 'idx', name=op.f('pk_tlog_nodes'))
    )
    op.create_table('tlog_checkpoints',
    sa.Column('size', LogIndex, autoincrement=False, nullable=False),
    sa.Column('root', sa.LargeBinary(length=32), nullable=False),
    sa.Column('note', sa.Text(), nullable=False),
    sa.Column('signed_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('size', name=op.f('pk_tlog_checkpoints'))
    )
    _backfill(pending)


def _backfill(pending):
    """Receipts and audit checkpoints signed before the log existed are queued in the order
    they were signed (the key store's copies: receipt_records, audit_checkpoints); the worker's
    sequencer appends them before anything newer. Holdings statements were never stored, so
    only those issued from now on are in the log."""
    conn = op.get_bind()
    # Typed: SQLite hands an untyped timestamp back as text, which a DateTime column refuses.
    # Ties (the same instant) in id order: a receipt's id is text, a checkpoint's a number.
    documents = sa.union_all(
        sa.select(
            sa.literal('receipt').label('kind'),
            sa.column('jws', sa.Text()),
            sa.column('issued_at', sa.DateTime(timezone=True)).label('at'),
            sa.literal(0).label('num'),
            sa.column('id', sa.String()).label('ref'),
        ).select_from(sa.table('receipt_records')),
        sa.select(
            sa.literal('audit-checkpoint').label('kind'),
            sa.column('jws', sa.Text()),
            sa.column('created_at', sa.DateTime(timezone=True)).label('at'),
            sa.column('id', sa.Integer()).label('num'),
            sa.literal('').label('ref'),
        ).select_from(sa.table('audit_checkpoints')),
    ).subquery()
    # Streamed (a server-side cursor on PostgreSQL): a million receipts are never in memory
    # at once, only a thousand rows at a time.
    # (On the statement: on the connection the option would stay for the inserts below.)
    rows = conn.execute(
        sa.select(documents.c.kind, documents.c.jws, documents.c.at)
        .order_by(documents.c.at, documents.c.kind, documents.c.num, documents.c.ref)
        .execution_options(stream_results=True, yield_per=1000)
    )
    batch = []
    for kind, jws, at in rows:
        batch.append({
            # RFC 9162 leaf hash of the document's entry (the SHA-256 of its JWS), as
            # rights/ledger/transparency.py computes it.
            'leaf_hash': hashlib.sha256(
                b'\x00' + hashlib.sha256(jws.encode('ascii')).digest()
            ).digest(),
            'kind': kind,
            'queued_at': at,
        })
        if len(batch) == 1000:
            op.bulk_insert(pending, batch)
            batch = []
    if batch:
        op.bulk_insert(pending, batch)


def downgrade_keystore():
    # The log is public and append-only: witnesses keep its checkpoints. Dropping it (and
    # back-filling it again on the next upgrade, without the statements, in another order)
    # would show every witness a rewritten log.
    if op.get_bind().execute(sa.text('SELECT 1 FROM tlog_leaves LIMIT 1')).first():
        raise RuntimeError(
            'the transparency log has entries: downgrading below 0016 would destroy a public '
            'append-only log that witnesses follow. Keep this revision.'
        )
    op.drop_table('tlog_checkpoints')
    op.drop_table('tlog_nodes')
    op.drop_table('tlog_leaves')
    op.drop_table('tlog_pending')
