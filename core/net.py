"""Who is asking: the client's address as seen through trusted proxies."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable

from django.conf import settings
from django.http import HttpRequest


def client_ip(request: HttpRequest) -> str:
    """The address of the client, for throttles, lockouts and network checks.

    ``X-Forwarded-For`` is read only through ``TRUSTED_PROXY_COUNT`` proxies:
    each appends the address it received the request from, so the client is
    the entry that the outermost trusted proxy wrote. Entries to its left were
    sent by the client itself and are ignored. With no trusted proxy (the
    default) the header is ignored and the peer address is the client. An
    entry that is no address leaves the peer address (the proxy's) to count
    by.
    """
    remote = request.META.get("REMOTE_ADDR") or "unknown"
    entry = _trusted_entry(request)
    return remote if entry is None else (_address(entry) or remote)


def _trusted_entry(request: HttpRequest) -> str | None:
    """The ``X-Forwarded-For`` entry the outermost trusted proxy wrote ("" if
    the header holds none); None with no trusted proxy or no header."""
    count = settings.TRUSTED_PROXY_COUNT
    forwarded = request.META.get("HTTP_X_FORWARDED_FOR", "")
    if count <= 0 or not forwarded:
        return None
    hops = [hop.strip() for hop in forwarded.split(",") if hop.strip()]
    return hops[-min(count, len(hops))] if hops else ""


def _address(entry: str) -> str | None:
    """The address an ``X-Forwarded-For`` entry gives, None if it gives
    none. Some proxies write the client's port after it
    (``203.0.113.5:4711``, ``[2001:db8::5]:4711``)."""
    host = entry
    if entry.startswith("["):
        inside, bracket, port = entry[1:].partition("]")
        if bracket and (not port or (port[:1] == ":" and port[1:].isdigit())):
            host = inside
    elif entry.count(":") == 1:
        before, _, port = entry.partition(":")
        if port.isdigit():
            host = before
    try:
        return str(ipaddress.ip_address(host))
    except ValueError:
        return None


def address_block(address: str) -> str:
    """The block of addresses one client holds, for counting what it does.

    An IPv4 address is its own block; an IPv6 one is its /64 network, which
    a provider hands to a single line: counted address by address, one
    client would have 2**64 fresh counts. An IPv4 address written as IPv6
    (``::ffff:203.0.113.9``) is the IPv4 address.
    """
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return address
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        return str(ipaddress.IPv6Network((ip, 64), strict=False))
    return str(ip)


def ip_in_networks(address: str, networks: Iterable[str]) -> bool:
    """Whether ``address`` is in one of ``networks``. An IPv4 address written
    as IPv6 (``::ffff:127.0.0.1``, as a socket open to both gives an IPv4
    client) is in the IPv4 networks too, as ``address_block`` reads it."""
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    forms = [ip]
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        forms.append(ip.ipv4_mapped)
    return any(form in ipaddress.ip_network(net, strict=False) for net in networks for form in forms)


# Headers a proxy adds on the way to gunicorn (docs/deploy.md, "Behind a proxy").
_FORWARDING_HEADERS = ("HTTP_X_FORWARDED_FOR", "HTTP_FORWARDED")

# Said to a client refused by address while its request came through a proxy
# that is not counted as trusted.
UNTRUSTED_PROXY = (
    "This request came through a proxy that PORTAL_TRUSTED_PROXY_COUNT does not count as trusted, "
    "so the client's address is not known and no network is trusted for it"
)


def through_untrusted_proxy(request: HttpRequest) -> bool:
    """Whether the request says it came through a proxy while none is
    counted as trusted: its peer is then the proxy (often on loopback or the
    private network), not the client."""
    return settings.TRUSTED_PROXY_COUNT <= 0 and any(
        request.META.get(header, "").strip() for header in _FORWARDING_HEADERS
    )


def client_in_networks(request: HttpRequest, networks: Iterable[str]) -> bool:
    """Whether the client is in one of ``networks``, for what is granted by
    address (the metrics, the course's writes).

    Never for a request through a proxy not counted as trusted: with nginx
    in front of gunicorn on the same host or network and
    PORTAL_TRUSTED_PROXY_COUNT left at 0, every client on the internet
    would have the proxy's address, and with it the grant. Throttles and
    lockouts still count such requests by the peer address (``client_ip``).
    Nor for one whose trusted proxy wrote no address for the client."""
    if through_untrusted_proxy(request):
        return False
    entry = _trusted_entry(request)
    if entry is not None and _address(entry) is None:
        # The client is unknown, not the proxy: the peer address is the
        # proxy's, often on loopback or the private network.
        return False
    return ip_in_networks(client_ip(request), networks)
