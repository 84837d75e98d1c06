"""The rights Lethe answers: each right's handler, registered with the request lifecycle.

The lifecycle never imports a right; it looks up the handler registered here for a request's
type. Adding a right is a handler module in its area's package and one line below. The app
imports this module when it is created (``web``), so every request, command and job finds the
seven rights registered.
"""

from rights.access.handlers import Access, Portability
from rights.contest.handlers import ConsentWithdrawal, Objection, Rectification, Restriction
from rights.erasure.handler import Erasure
from rights.lifecycle.handlers import register

RIGHTS = (
    Access(),
    Portability(),
    Rectification(),
    Erasure(),
    Restriction(),
    Objection(),
    ConsentWithdrawal(),
)

for handler in RIGHTS:
    register(handler)
