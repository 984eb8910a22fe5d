import pytest
from django.test import RequestFactory

from healthapp.net import client_ip


@pytest.mark.parametrize(
    ("proxies", "forwarded", "remote", "expected"),
    [
        (0, "203.0.113.5", "192.0.2.1", "192.0.2.1"),  # no proxy: the header is ignored
        (1, "203.0.113.5", "10.0.0.1", "203.0.113.5"),
        (1, "6.6.6.6, 203.0.113.5", "10.0.0.1", "203.0.113.5"),  # forged left part ignored
        (2, "6.6.6.6, 203.0.113.5, 10.0.0.2", "10.0.0.1", "203.0.113.5"),
        (2, "203.0.113.5", "10.0.0.1", "10.0.0.1"),  # fewer hops than proxies: trust the socket
        (1, "not-an-ip", "10.0.0.1", ""),
        (1, "2001:db8::1", "10.0.0.1", "2001:db8::1"),
    ],
)
def test_client_ip_trusts_only_our_own_proxies(settings, proxies, forwarded, remote, expected):
    settings.TRUSTED_PROXY_COUNT = proxies
    request = RequestFactory().get("/", HTTP_X_FORWARDED_FOR=forwarded, REMOTE_ADDR=remote)
    assert client_ip(request) == expected
