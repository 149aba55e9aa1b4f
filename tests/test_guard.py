"""The address rules decide on addresses alone: no test here opens a connection."""

import ipaddress

import pytest

from flows.guard import (
    AddressPolicy,
    BlockedURL,
    check_address,
    check_target,
    check_url,
    forbidden_reason,
)

REFUSED = [
    "169.254.169.254",  # cloud metadata
    "10.1.2.3",
    "172.16.0.1",
    "192.168.1.10",
    "100.64.0.1",  # carrier-grade NAT
    "127.0.0.1",
    "127.0.0.2",
    "0.0.0.0",
    "::1",
    "::ffff:127.0.0.1",  # IPv4-mapped loopback
    "::ffff:169.254.169.254",
    "64:ff9b::7f00:1",  # NAT64 of 127.0.0.1
    "64:ff9b::a9fe:a9fe",  # NAT64 of 169.254.169.254
    "2002:7f00:1::",  # 6to4 of 127.0.0.1
    "fd00:ec2::254",  # unique local (AWS IPv6 metadata)
    "fe80::1",
    "224.0.0.1",
    "240.0.0.1",
]
PUBLIC = ["8.8.8.8", "1.1.1.1", "2606:4700:4700::1111", "64:ff9b::808:808"]


@pytest.mark.parametrize("address", REFUSED)
def test_private_and_special_addresses_are_refused(address):
    ip = ipaddress.ip_address(address)
    assert forbidden_reason(ip) is not None
    with pytest.raises(BlockedURL, match="allow_private_networks"):
        check_address(ip, AddressPolicy())


@pytest.mark.parametrize("address", PUBLIC)
def test_public_addresses_pass(address):
    ip = ipaddress.ip_address(address)
    assert forbidden_reason(ip) is None
    check_address(ip, AddressPolicy())


def test_allow_list_lets_only_its_network_through():
    policy = AddressPolicy.from_settings(False, ("127.0.0.1/32",))
    check_address(ipaddress.ip_address("127.0.0.1"), policy)
    check_address(ipaddress.ip_address("::ffff:127.0.0.1"), policy)
    for other in ("127.0.0.2", "::1", "10.0.0.1"):
        with pytest.raises(BlockedURL):
            check_address(ipaddress.ip_address(other), policy)


def test_allow_private_networks_lets_everything_through():
    policy = AddressPolicy(allow_private=True)
    for address in REFUSED:
        check_address(ipaddress.ip_address(address), policy)


@pytest.mark.parametrize(
    "url",
    [
        "file:///etc/passwd",
        "data:text/plain,hi",
        "gopher://x/",
        "javascript:alert(1)",
        "ftp://x/feed",
        "/relative",
        "http://",
    ],
)
def test_only_http_urls_with_a_host(url):
    with pytest.raises(BlockedURL):
        check_url(url)


def test_ip_literal_urls_are_checked_without_dns():
    with pytest.raises(BlockedURL):
        check_target("http://[::ffff:7f00:1]:8080/feed", AddressPolicy())
    with pytest.raises(BlockedURL):
        check_target("http://169.254.169.254/latest/meta-data/", AddressPolicy())


def test_bad_allow_list_entry_is_a_clear_error():
    with pytest.raises(BlockedURL, match="allowed_networks"):
        AddressPolicy.from_settings(False, ("not-a-network",))
