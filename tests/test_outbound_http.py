"""The HTTP client webhooks use: URLs checked once and connections pinned to the checked address
(no DNS rebinding), internal addresses refused however they are wrapped, one deadline for the
whole exchange (a trickling receiver cannot hold a worker), and a worker that survives a
delivery failing in an unexpected way."""

import socket
import threading
import time

import pytest
from sqlalchemy import select

from rights.errors import Invalid
from rights.recipients import outbound_http, webhook_delivery, webhooks
from storage.db import db
from storage.models import Delivery
from tests.helpers import API, deliver
from tests.test_webhooks import Receiver, _event, _headers, _subscribe


@pytest.mark.parametrize(
    ("url", "why"),
    [
        ("https://user:pw@example.com/h", "no user:password@"),
        ("https://example.com:99999/h", "bad port"),
        ("https://example.com:x/h", "bad port"),
        ("https://example.com/a hook", "no spaces"),
        ("https://example.com/a\r\nX-Evil: 1", "no spaces"),
        ("ftp://example.com/x", "an http or https URL"),
        ("https:///nohost", "an http or https URL"),
        (None, "an http or https URL"),
    ],
)
def test_bad_urls_are_refused_saying_why(url, why):
    with pytest.raises(Invalid) as caught:
        outbound_http.normalise(url)
    assert caught.value.fields == {"url": [why]}


def test_urls_are_stored_normalised():
    assert outbound_http.normalise("HTTPS://Hooks.Example.COM") == "https://hooks.example.com/"
    assert outbound_http.normalise("https://h.example/x?a=1#frag") == "https://h.example/x?a=1"


@pytest.mark.parametrize(
    ("address", "public"),
    [
        ("93.184.216.34", True),
        ("2606:2800:220:1:248:1893:25c8:1946", True),
        ("127.0.0.1", False),
        ("10.1.2.3", False),
        ("169.254.169.254", False),
        ("100.64.0.1", False),  # carrier-grade NAT
        ("::1", False),
        ("fe80::1", False),
        ("::ffff:127.0.0.1", False),  # IPv4-mapped
        ("64:ff9b::a9fe:a9fe", False),  # NAT64 of 169.254.169.254
        ("64:ff9b::5db8:d822", True),  # NAT64 of a public address
        ("2002:7f00:1::1", False),  # 6to4 of 127.0.0.1
        ("2001:0:4136:e378:8000:63bf:f5ff:fffe", False),  # Teredo of 10.0.0.1
    ],
)
def test_internal_addresses_are_refused_however_wrapped(address, public):
    assert outbound_http.is_public(address) is public


def test_the_connection_goes_to_the_address_that_was_checked(monkeypatch):
    """DNS rebinding: the name resolves to the receiver for the check, then elsewhere. The
    connection still goes to the checked address, with the name in Host."""
    receiver = Receiver()
    port = receiver.server.server_port
    answers = iter([[("127.0.0.1", port)], [("10.255.255.1", port)]])
    real = socket.getaddrinfo

    def rebinding(host, *args, **kwargs):
        if host != "hooks.rebind.test":
            return real(host, *args, **kwargs)
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", a) for a in next(answers)]

    monkeypatch.setattr(socket, "getaddrinfo", rebinding)
    try:
        target = outbound_http.resolve(
            f"http://hooks.rebind.test:{port}/in?x=1", allow_private=True, https_only=False
        )
        assert target.addresses == ("127.0.0.1",)
        code = outbound_http.post(target, b"{}", {"content-type": "application/json"}, 2)
    finally:
        receiver.close()
    assert code == 200
    headers = _headers(receiver.received[0][0])
    assert headers["host"] == f"hooks.rebind.test:{port}"


def test_a_private_answer_is_refused_when_private_targets_are_not_allowed(monkeypatch):
    monkeypatch.setattr(
        socket,
        "getaddrinfo",
        lambda *a, **k: [(socket.AF_INET6, socket.SOCK_STREAM, 6, "", ("::ffff:10.0.0.1", 443))],
    )
    with pytest.raises(Invalid) as caught:
        outbound_http.resolve("https://brand.example/h", allow_private=False, https_only=True)
    assert caught.value.fields == {"url": ["private address refused"]}


def test_one_deadline_for_the_whole_exchange():
    """A receiver sending its answer a byte at a time never goes quiet for a whole timeout,
    yet the attempt ends at the deadline."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen()
    stop = threading.Event()

    def trickle():
        conn, _ = server.accept()
        conn.recv(65536)
        for byte in b"HTTP/1.1 200 OK\r\nX-Slow: " + b"a" * 200:
            if stop.is_set():
                break
            try:
                conn.sendall(bytes([byte]))
            except OSError:
                break
            time.sleep(0.1)
        conn.close()

    threading.Thread(target=trickle, daemon=True).start()
    target = outbound_http.Target("http", "127.0.0.1", server.getsockname()[1], "/", ("127.0.0.1",))
    started = time.monotonic()
    try:
        with pytest.raises(TimeoutError):
            outbound_http.post(target, b"{}", {}, 1.0)
    finally:
        stop.set()
        server.close()
    assert time.monotonic() - started < 2.5


def test_a_delivery_failing_unexpectedly_does_not_stop_the_others(hooks_app, monkeypatch):
    receiver = Receiver()
    try:
        _subscribe(hooks_app, receiver.url)
        _event(hooks_app, 1)
        _event(hooks_app, 2)
        real = webhooks.body_of
        broken = []

        def body_of(delivery):
            if not broken:
                broken.append(delivery.id)
                raise RuntimeError("boom")
            return real(delivery)

        # Patched where delivery reads it (moved out of webhooks with the delivery code).
        monkeypatch.setattr(webhook_delivery, "body_of", body_of)
        counts = deliver(hooks_app)
    finally:
        receiver.close()
    assert counts["webhooks_delivered"] == 1 and counts["webhooks_retry"] == 1
    with hooks_app.app_context():
        failed = db.session.get(Delivery, broken[0])
        assert failed.status == "pending" and failed.last_error == "internal error (RuntimeError)"


@pytest.fixture
def hooks_app(app_factory):
    return app_factory(WEBHOOK_ALLOW_PRIVATE_TARGETS=True)


def test_odd_delivery_ids_are_not_found_not_crashed_on(hooks_app):
    receiver = Receiver()
    try:
        _, _, key = _subscribe(hooks_app, receiver.url)
    finally:
        receiver.close()
    client = hooks_app.test_client()
    for odd in ("msg_%00x", "msg_" + "f" * 300, "msg_%FF%FE"):
        assert client.post(f"{API}/deliveries/{odd}/confirm", headers=key).status_code == 404
    with hooks_app.app_context():
        assert webhooks.find_delivery("msg_\x00") is None
        assert webhooks.find_delivery(12) is None
        assert db.session.execute(select(Delivery)).first() is None


# Addresses that are never a receiver: refused whatever LETHE_WEBHOOK_ALLOW_PRIVATE_TARGETS says.
NEVER_A_RECEIVER = [
    ("224.0.0.1", "multicast address refused"),
    ("239.255.255.250", "multicast address refused"),  # SSDP
    ("ff02::1", "multicast address refused"),
    ("ff0e::101", "multicast address refused"),
    ("::ffff:224.0.0.251", "multicast address refused"),  # mDNS, IPv4-mapped
    ("255.255.255.255", "broadcast address refused"),
    ("0.0.0.0", "unspecified address refused"),  # noqa: S104 - an address refused, not bound
    ("::", "unspecified address refused"),
    ("240.0.0.1", "reserved address refused"),
    ("254.1.2.3", "reserved address refused"),
]


def _answering(monkeypatch, address):
    family = socket.AF_INET6 if ":" in address else socket.AF_INET
    monkeypatch.setattr(
        socket,
        "getaddrinfo",
        lambda host, port, *a, **k: [(family, socket.SOCK_STREAM, 6, "", (address, port))],
    )


@pytest.mark.parametrize("allow_private", [False, True])
@pytest.mark.parametrize(("address", "why"), NEVER_A_RECEIVER)
def test_addresses_that_are_never_a_receiver_are_refused(monkeypatch, address, why, allow_private):
    _answering(monkeypatch, address)
    with pytest.raises(Invalid) as caught:
        outbound_http.resolve(
            "http://hooks.example/h", allow_private=allow_private, https_only=False
        )
    assert caught.value.fields == {"url": [why]}


@pytest.mark.parametrize(
    "url",
    ["http://224.0.0.1/h", "http://[ff02::1]/h", "http://255.255.255.255/h", "http://0.0.0.0/h"],
)
def test_literal_multicast_broadcast_and_unspecified_hosts_are_refused(url):
    with pytest.raises(Invalid) as caught:
        outbound_http.resolve(url, allow_private=True, https_only=False)
    assert caught.value.fields["url"][0].split()[0] in ("multicast", "broadcast", "unspecified")


@pytest.mark.parametrize("url", ["https://example.com:0/h", "http://example.com:00/h"])
def test_port_zero_is_refused_naming_the_port(url):
    with pytest.raises(Invalid) as caught:
        outbound_http.normalise(url)
    assert caught.value.fields == {"url": ["port 0 refused"]}
    assert "port 0" in caught.value.message
    with pytest.raises(Invalid) as again:
        outbound_http.resolve(url, allow_private=True, https_only=False)
    assert again.value.fields == {"url": ["port 0 refused"]}


def test_a_multicast_or_port_zero_subscriber_is_refused_when_added(hooks_app):
    for url, why in (
        ("http://224.0.0.1:8080/in", "multicast address refused"),
        ("http://127.0.0.1:0/in", "port 0 refused"),
    ):
        with hooks_app.app_context(), pytest.raises(Invalid) as caught:
            webhooks.add("Nova", url, ["subject.restricted"], actor="t")
        assert caught.value.fields == {"url": [why]}


def test_a_receiver_turning_multicast_is_refused_before_the_attempt(hooks_app, monkeypatch):
    """Checked again before every attempt: a host that resolved to a receiver when the
    subscriber was added and to a multicast group now is not called."""
    receiver = Receiver()
    try:
        _subscribe(hooks_app, receiver.url)
        _event(hooks_app, 1)
        _answering(monkeypatch, "239.1.2.3")
        counts = deliver(hooks_app)
    finally:
        receiver.close()
    assert counts["webhooks_delivered"] == 0 and counts["webhooks_retry"] == 1
    assert receiver.received == []
    with hooks_app.app_context():
        (delivery,) = db.session.execute(select(Delivery)).scalars()
        assert delivery.status == "pending" and "multicast" in delivery.last_error
