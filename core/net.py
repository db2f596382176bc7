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
    default) the header is ignored and the peer address is the client.
    """
    remote = request.META.get("REMOTE_ADDR") or "unknown"
    count = settings.TRUSTED_PROXY_COUNT
    forwarded = request.META.get("HTTP_X_FORWARDED_FOR", "")
    if count <= 0 or not forwarded:
        return remote
    hops = [hop.strip() for hop in forwarded.split(",") if hop.strip()]
    if not hops:
        return remote
    candidate = hops[-min(count, len(hops))]
    try:
        return str(ipaddress.ip_address(candidate))
    except ValueError:
        return remote


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
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(ip in ipaddress.ip_network(net, strict=False) for net in networks)
