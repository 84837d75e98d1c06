"""Demo data for `make run` and the browser tests: a platform with members, awards and
requests at every stage (``loader``), and, for `make run`, the brand and a disclosure-list
consumer downstream: subscribed to webhooks (``subscribers``, their secrets written for the
receiver) and played by the webhook receiver (``receiver``); both development only.

May use: rights and storage (the loader files requests the way a member would; the receiver
uses none of ours: it speaks to Lethe over HTTP, as a real recipient does); nothing imports it
except cli and tests."""
