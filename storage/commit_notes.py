"""Things a transaction notes now and writes when it commits: :class:`CommitNotes`.

Some rows must be written as late as possible in their transaction, in one place: the audit
chain's entries (chained under a lock held only while they are written) and the transparency
log's queue rows (in the key store, whose write lock must come after the main database's, as
every other transaction takes them, or two transactions wait on each other on SQLite). A
service notes the item (:meth:`CommitNotes.note`); the owner's ``before_commit`` listener takes
them (:meth:`CommitNotes.take`) and writes them.

What the notes follow: a rollback forgets what was noted in what it undid — the transaction,
or a savepoint and the savepoints inside it — and keeps the rest; a savepoint released keeps
its notes for the outer commit; a transaction that ends without committing (a closed session)
forgets them all.
"""

from sqlalchemy import event
from sqlalchemy.orm import Session


class CommitNotes:
    """Items noted in a session's transaction, kept in ``session.info[key]`` with the
    (sub)transaction that noted each."""

    def __init__(self, key: str):
        self.key = key
        event.listen(Session, "after_soft_rollback", self._forget_at_rollback)
        event.listen(Session, "after_transaction_end", self._forget_at_end)

    def note(self, session: Session, item) -> None:
        if not session.in_transaction():
            session.begin()  # what the next statement would do: so that a rollback forgets it
        transaction = session.get_nested_transaction() or session.get_transaction()
        session.info.setdefault(self.key, []).append((transaction, item))

    def pending(self, session: Session) -> list:
        return [item for _, item in session.info.get(self.key, ())]

    def take(self, session: Session) -> list:
        """The items to write now (and forget): at the outer commit, or when a statement
        needs them written. Inside a savepoint being released, nothing: they wait for the
        outer commit."""
        noted = session.info.pop(self.key, None) or []
        return [item for _, item in noted]

    def _forget_at_rollback(self, session, previous_transaction) -> None:
        noted = session.info.get(self.key)
        if not noted:
            return
        undone = _rolled_back(previous_transaction)
        if undone.parent is None:
            session.info.pop(self.key, None)
            return
        session.info[self.key] = [(t, i) for t, i in noted if not _within(t, undone)]

    def _forget_at_end(self, session, transaction) -> None:
        if transaction.parent is None:
            session.info.pop(self.key, None)


def _rolled_back(transaction):
    """What a rollback reported for ``transaction`` really undid: the savepoint or the
    transaction it belongs to (a failed flush reports its own sub-transaction)."""
    while not transaction.nested and transaction.parent is not None:
        transaction = transaction.parent
    return transaction


def _within(transaction, outer) -> bool:
    while transaction is not None:
        if transaction is outer:
            return True
        transaction = transaction.parent
    return False
