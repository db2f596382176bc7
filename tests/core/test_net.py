"""The client's address, read through the trusted proxies (core.net)."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client, RequestFactory

from catalog.models import Product
from core.net import client_in_networks, client_ip

pytestmark = pytest.mark.django_db

PROXY = "10.0.0.2"  # in the private network, which the default lab networks hold
FRUIT = {"name": "Banana", "weight": "500", "description": "Ripe.", "image_name": "010.jpeg"}


def _through_proxy(entry: str) -> Any:
    return RequestFactory().get("/", REMOTE_ADDR=PROXY, HTTP_X_FORWARDED_FOR=entry)


@pytest.mark.parametrize(
    ("entry", "address"),
    [
        ("203.0.113.9:51234", "203.0.113.9"),
        ("[2001:db8::7]:443", "2001:db8::7"),
        ("[2001:db8::7]", "2001:db8::7"),
        ("198.51.100.1, 203.0.113.9:51234", "203.0.113.9"),
    ],
)
def test_an_address_the_trusted_proxy_wrote_with_its_port_is_the_clients(
    settings: Any, entry: str, address: str
) -> None:
    """Some load balancers (Azure's Application Gateway) write the client's port beside its address."""
    settings.TRUSTED_PROXY_COUNT = 1
    assert client_ip(_through_proxy(entry)) == address


@pytest.mark.parametrize("entry", ["unknown", "203.0.113.9:port", "[2001:db8::7]:x", "host.example:80"])
def test_an_entry_of_the_trusted_proxy_that_names_no_address_grants_nothing(
    settings: Any, entry: str
) -> None:
    """The proxy is the peer, not the client: granted by the peer's address,
    every client on the internet had the proxy's place in the private network."""
    settings.TRUSTED_PROXY_COUNT = 1
    request = _through_proxy(entry)
    assert not client_in_networks(request, settings.LAB_WRITE_NETWORKS)


def test_through_a_trusted_proxy_writing_ports_the_internet_gets_no_anonymous_writes(
    client: Client, settings: Any
) -> None:
    settings.TRUSTED_PROXY_COUNT = 1
    outside = client.post("/fruits/", FRUIT, REMOTE_ADDR=PROXY, HTTP_X_FORWARDED_FOR="203.0.113.9:51234")
    assert outside.status_code == 401
    assert not Product.objects.exists()
    unknown = client.post("/fruits/", FRUIT, REMOTE_ADDR=PROXY, HTTP_X_FORWARDED_FOR="unknown")
    assert unknown.status_code == 401
    office = client.post("/fruits/", FRUIT, REMOTE_ADDR=PROXY, HTTP_X_FORWARDED_FOR="192.168.1.20:40000")
    assert office.status_code == 201


@pytest.mark.parametrize("peer", ["::ffff:127.0.0.1", "::ffff:192.168.1.20"])
def test_a_client_seen_through_a_dual_stack_socket_is_in_its_ipv4_network(
    client: Client, settings: Any, peer: str
) -> None:
    """gunicorn bound to ``[::]`` sees an IPv4 client as an IPv4-mapped
    IPv6 address: a course script on the same machine is still on loopback."""
    posted = client.post("/fruits/", FRUIT, REMOTE_ADDR=peer)
    assert posted.status_code == 201, posted.content
    assert client.get("/metrics", REMOTE_ADDR="::ffff:127.0.0.1").status_code == 200
    assert client.post("/fruits/", FRUIT, REMOTE_ADDR="::ffff:203.0.113.9").status_code == 401


@pytest.mark.parametrize(
    "entry", ["unknown", "203.0.113.9:port", "[2001:db8::7]:x", "[2001:db8::7]x80", "host.example:80"]
)
def test_an_entry_of_the_trusted_proxy_that_names_no_address_leaves_the_proxy_s_to_count_by(
    settings: Any, entry: str
) -> None:
    """Throttles and the lockout count such a request by the peer's address
    (docs/deploy.md), not by the address part of an entry read half right."""
    settings.TRUSTED_PROXY_COUNT = 1
    assert client_ip(_through_proxy(entry)) == PROXY


def test_with_fewer_entries_than_trusted_proxies_the_first_entry_is_the_client(settings: Any) -> None:
    """A count set higher than the proxies there are: the leftmost entry is
    the client's, not a server error."""
    settings.TRUSTED_PROXY_COUNT = 2
    assert client_ip(_through_proxy("203.0.113.9")) == "203.0.113.9"


def test_an_empty_entry_is_none_a_proxy_wrote(settings: Any) -> None:
    settings.TRUSTED_PROXY_COUNT = 1
    assert client_ip(_through_proxy("198.51.100.1, 203.0.113.9, ")) == "203.0.113.9"


def test_a_request_that_says_it_came_through_a_proxy_by_forwarded_alone_is_granted_nothing_by_address(
    settings: Any,
) -> None:
    """RFC 7239's ``Forwarded`` says so as ``X-Forwarded-For`` does."""
    request = RequestFactory().get("/", REMOTE_ADDR=PROXY, HTTP_FORWARDED="for=203.0.113.9")
    assert client_ip(request) == PROXY
    assert not client_in_networks(request, settings.LAB_WRITE_NETWORKS)
    assert client_in_networks(RequestFactory().get("/", REMOTE_ADDR=PROXY), settings.LAB_WRITE_NETWORKS)
