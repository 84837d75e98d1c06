"""Calling other people's servers (webhook receivers) without being turned against our own.

A URL is checked once and its host resolved once; the connection then goes to the address that
was checked (the name still goes in ``Host`` and in TLS's server name), so a receiver's DNS
cannot answer the check with a public address and the connection with an internal one (DNS
rebinding). Refused: anything but http(s), userinfo, whitespace or control characters, bad
ports (port 0 among them), addresses that are never a receiver (multicast, broadcast, unspecified,
reserved: refused even when private targets are allowed), and — unless private targets are
allowed (tests, local receivers) — any address that is not global, including IPv4 addresses
wrapped in IPv6 (mapped, 6to4, Teredo, NAT64). No proxy
from the environment is used, redirects are answers (never followed), and each attempt has one
deadline for the whole exchange, not per read, so a receiver trickling bytes cannot hold a
worker.
"""

import http.client
import ipaddress
import socket
import ssl
import threading
from dataclasses import dataclass
from typing import NoReturn
from urllib.parse import urlsplit, urlunsplit

from rights.errors import Invalid

_NAT64 = (ipaddress.ip_network("64:ff9b::/96"), ipaddress.ip_network("64:ff9b:1::/48"))


@dataclass(frozen=True)
class Target:
    scheme: str
    host: str
    port: int
    path: str  # path and query, as sent on the request line
    addresses: tuple[str, ...]


def _refuse(message: str, why: str) -> NoReturn:
    raise Invalid(message, {"url": [why]})


def normalise(url: str) -> str:
    """The URL as Lethe stores it, or :class:`Invalid` naming what is wrong."""
    text = url if isinstance(url, str) else ""
    if any(ord(ch) <= 0x20 or ord(ch) == 0x7F for ch in text):
        _refuse("The URL may not contain spaces or control characters.", "no spaces")
    parts = urlsplit(text)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        _refuse("The URL must be http(s)://host/…", "an http or https URL")
    if parts.username is not None or parts.password is not None:
        _refuse("Put no user name or password in the URL.", "no user:password@")
    try:
        port = parts.port
    except ValueError:
        _refuse("The URL's port is not a port number.", "bad port")
    if port == 0:
        # Not a port anything listens on (and ``port or 443`` would quietly make it 443).
        _refuse("The URL's port 0 is not a port a receiver listens on.", "port 0 refused")
    return urlunsplit((parts.scheme, parts.netloc.lower(), parts.path or "/", parts.query, ""))


def embedded_ipv4(address: ipaddress.IPv6Address) -> list[ipaddress.IPv4Address]:
    """IPv4 addresses an IPv6 address carries (mapped, 6to4, Teredo, NAT64)."""
    found = []
    if address.ipv4_mapped:
        found.append(address.ipv4_mapped)
    if address.sixtofour:
        found.append(address.sixtofour)
    if address.teredo:
        found.extend(address.teredo)
    if any(address in net for net in _NAT64):
        found.append(ipaddress.IPv4Address(int(address) & 0xFFFFFFFF))
    return found


_BROADCAST = ipaddress.IPv4Address("255.255.255.255")
_THIS_NETWORK = ipaddress.ip_network("0.0.0.0/8")  # RFC 1122: a source, never a destination


def never_a_receiver(text: str) -> str | None:
    """Why no webhook may go to this address whatever the settings, or None: multicast
    (224.0.0.0/4, ff00::/8), the broadcast address, the unspecified address (0.0.0.0, ::)
    and reserved IPv4 (240.0.0.0/4) — also when wrapped in IPv6. None of these is a
    receiver; some (0.0.0.0, ::) even reach this host."""
    address = ipaddress.ip_address(text.split("%")[0])
    for candidate in (address, *(embedded_ipv4(address) if address.version == 6 else [])):
        if candidate.is_multicast:
            return "multicast"
        if candidate == _BROADCAST:
            return "broadcast"
        if candidate.is_unspecified or (candidate.version == 4 and candidate in _THIS_NETWORK):
            return "unspecified"
        # IPv4 only: IPv6's "reserved" ranges include ::/8 (loopback, IPv4-mapped).
        if candidate.version == 4 and candidate.is_reserved:
            return "reserved"
    return None


def is_public(text: str) -> bool:
    address = ipaddress.ip_address(text.split("%")[0])
    wrapped = embedded_ipv4(address) if address.version == 6 else []
    return address.is_global and all(a.is_global for a in wrapped)


def resolve(url: str, *, allow_private: bool, https_only: bool) -> Target:
    """Check ``url`` and resolve its host once: the addresses to connect to."""
    parts = urlsplit(normalise(url))
    if https_only and parts.scheme != "https":
        _refuse("Webhook URLs must use https.", "https only")
    port = parts.port or (443 if parts.scheme == "https" else 80)
    try:
        infos = socket.getaddrinfo(parts.hostname, port, proto=socket.IPPROTO_TCP)
    except (socket.gaierror, UnicodeError):
        _refuse("The host does not resolve.", "unknown host")
    addresses = tuple(dict.fromkeys(info[4][0] for info in infos))
    for address in addresses:
        why = never_a_receiver(address)
        if why:  # whatever allow_private says
            article = "an" if why[0] in "aeiou" else "a"
            _refuse(
                f"The URL points at {article} {why} address, which is never a receiver.",
                f"{why} address refused",
            )
    if not allow_private and not all(is_public(a) for a in addresses):
        _refuse("The URL points inside the network.", "private address refused")
    path = parts.path + (f"?{parts.query}" if parts.query else "")
    return Target(parts.scheme, parts.hostname, port, path, addresses)


class _Pinned:
    """Connect to the checked address, whatever the name resolves to by now."""

    address: str

    def connect(self):
        self.sock = socket.create_connection((self.address, self.port), self.timeout)
        if isinstance(self, http.client.HTTPSConnection):
            self.sock = self._context.wrap_socket(self.sock, server_hostname=self.host)


class _PinnedHTTP(_Pinned, http.client.HTTPConnection):
    pass


class _PinnedHTTPS(_Pinned, http.client.HTTPSConnection):
    pass


def post(target: Target, body: bytes, headers: dict, timeout: float) -> int:
    """POST ``body`` and return the status code (a 3xx is returned, not followed). Raises
    ``TimeoutError`` past the deadline, ``OSError`` or ``http.client.HTTPException`` when the
    exchange fails."""
    last_error: Exception = OSError("no address")
    for address in target.addresses:
        if target.scheme == "https":
            conn = _PinnedHTTPS(
                target.host, target.port, timeout=timeout, context=ssl.create_default_context()
            )
        else:
            conn = _PinnedHTTP(target.host, target.port, timeout=timeout)
        conn.address = address
        try:
            conn.connect()
        except OSError as exc:
            last_error = exc
            conn.close()
            continue
        return _exchange(conn, target, body, headers, timeout)
    raise last_error


def _exchange(conn, target: Target, body: bytes, headers: dict, timeout: float) -> int:
    expired = threading.Event()

    def cut():
        expired.set()
        try:
            conn.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass

    timer = threading.Timer(timeout, cut)
    timer.daemon = True
    timer.start()
    try:
        conn.request("POST", target.path, body=body, headers=headers)
        response = conn.getresponse()
        return response.status
    except (OSError, http.client.HTTPException):
        if expired.is_set():
            raise TimeoutError("the receiver did not answer in time") from None
        raise
    finally:
        timer.cancel()
        conn.close()
