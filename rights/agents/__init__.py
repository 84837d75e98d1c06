"""Authorized agents: the Data Rights Protocol (DRP 1.0), through which an agent (Consumer
Reports' Permission Slip among them) files requests on a member's behalf.

``messages.py`` reads the protocol's signed messages (libsodium combined mode, Ed25519) and
checks their claims; ``registry.py`` keeps the agents an admin registered and pairs them
(a bearer token, stored hashed). The top of rights/: it may use any area below it.
"""
