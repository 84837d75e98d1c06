"""Demo data for `make run` and the browser tests: a platform with members, awards and
requests at every stage (``loader``), and, for `make run`, the webhook receiver that plays the
brand and a disclosure-list consumer downstream (``receiver``: development only).

May use: rights and storage (the loader files requests the way a member would; the receiver
uses none of ours: it speaks to Lethe over HTTP, as a real recipient does); nothing imports it
except cli and tests."""
