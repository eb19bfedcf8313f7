"""REDIS_URL parsing and the settings built from it (exchange_site/redis_clients.py); the
servers behind a Sentinel URL are exercised in test_redis_sentinel.py."""

import pytest
from django.core.exceptions import ImproperlyConfigured

from exchange_site.redis_clients import (
    DEFAULT_SENTINEL_PORT,
    cache_settings,
    celery_broker_settings,
    channel_layer_hosts,
    parse_redis_url,
    redis_address,
    redis_client,
)

SENTINEL = "sentinel://10.77.0.11:26379,10.77.0.12:26380,10.77.0.13:26381/6?master=mh"


@pytest.mark.parametrize(
    ("url", "scheme", "db", "password", "ssl"),
    [
        ("redis://127.0.0.1:6379/3", "redis", 3, None, False),
        ("redis://127.0.0.1", "redis", 0, None, False),
        ("redis://:s%40cret@redis.internal:6380/2", "redis", 2, "s@cret", False),
        ("redis://localhost:6379?db=4", "redis", 4, None, False),
        ("rediss://:pw@redis.example.com:6380/1", "rediss", 1, "pw", True),
        ("unix:///run/redis/redis.sock?db=5", "unix", 5, None, False),
        ("unix:///run/redis/redis.sock", "unix", 0, None, False),
    ],
)
def test_parse_redis_url_reads_a_single_server(url, scheme, db, password, ssl):
    parsed = parse_redis_url(url)

    assert (parsed.scheme, parsed.db, parsed.password, parsed.ssl) == (scheme, db, password, ssl)
    assert parsed.url == url
    assert not parsed.is_sentinel
    assert parsed.sentinels == ()


def test_parse_redis_url_reads_every_part_of_a_sentinel_url():
    parsed = parse_redis_url(
        "sentinel://app:p%40ss@h1:26379,h2:26380,[fd00::3]:26381/6"
        "?master=mh&sentinel_password=sp&ssl=true"
    )

    assert parsed.is_sentinel
    assert parsed.sentinels == (("h1", 26379), ("h2", 26380), ("fd00::3", 26381))
    assert (parsed.db, parsed.master, parsed.username, parsed.password) == (6, "mh", "app", "p@ss")
    assert parsed.sentinel_password == "sp"
    assert parsed.ssl is True


def test_a_sentinel_url_defaults_master_port_and_database():
    parsed = parse_redis_url("sentinel://h1,h2:26390")

    assert parsed.sentinels == (("h1", DEFAULT_SENTINEL_PORT), ("h2", 26390))
    assert (parsed.db, parsed.master, parsed.password, parsed.ssl) == (0, "exchange", None, False)
    assert parsed.sentinel_password is None


@pytest.mark.parametrize(
    ("url", "says"),
    [
        ("", "expected one of"),
        ("localhost:6379", "expected one of"),
        ("http://localhost:6379/0", "unknown scheme 'http'"),
        ("redis:///0", "no host"),
        ("redis://localhost:port/0", "Port could not be cast"),
        ("redis://localhost:6379/zero", "database must be a number"),
        ("unix://", "socket's path"),
        ("unix:///run/redis.sock?db=x", "database must be a number"),
        ("sentinel:///0", "no sentinel addresses"),
        ("sentinel://h1:26379,,h2:26379/0", "empty sentinel address"),
        ("sentinel://h1:abc/0", "no valid port"),
        ("sentinel://h1:99999/0", "no valid port"),
        ("sentinel://:26379/0", "has no host"),
        ("sentinel://fd00::1:26379/0", "in brackets"),
        ("sentinel://h1:26379/six", "database must be a number"),
        ("sentinel://h1:26379/0?master=", "cannot be empty"),
        ("sentinel://h1:26379/0?mastr=mh", "unknown option(s) ['mastr']"),
        ("sentinel://h1:26379/0?master=a&master=b", "given twice"),
        ("sentinel://h1:26379/0?ssl=maybe", "ssl must be true or false"),
        ("sentinel://secret@h1:26379/0", "credentials need a colon"),
        ("sentinel://h1:26379/0#frag", "fragment"),
    ],
)
def test_parse_redis_url_rejects_a_malformed_url_saying_why(url, says):
    with pytest.raises(ImproperlyConfigured) as raised:
        parse_redis_url(url)

    assert says in str(raised.value)
    assert str(raised.value).startswith("REDIS_URL ")


def test_a_rejected_url_does_not_show_its_password():
    with pytest.raises(ImproperlyConfigured) as raised:
        parse_redis_url("sentinel://:hunter2@h1:bad/0")

    assert "hunter2" not in str(raised.value)
    assert "***" in str(raised.value)


@pytest.mark.parametrize(
    ("url", "secrets"),
    [
        # A password that also spells the scheme or the user must not survive anywhere.
        ("redis://:redis@host:bad/0", ["redis@"]),
        ("redis://admin:admin@host:bad/0", [":admin@"]),
        (
            "sentinel://:pw@h1:1,h2:bad/0?master=m&sentinel_password=sp-secret",
            ["sp-secret", ":pw@"],
        ),
    ],
)
def test_no_password_survives_in_a_rejected_url(url, secrets):
    with pytest.raises(ImproperlyConfigured) as raised:
        parse_redis_url(url)

    for secret in secrets:
        assert secret not in str(raised.value)
    assert "***" in str(raised.value)


def test_a_single_server_url_gives_the_settings_of_before():
    url = "redis://127.0.0.1:6379/6"

    assert cache_settings(url) == {
        "BACKEND": "django_redis.cache.RedisCache",
        "LOCATION": url,
        "KEY_PREFIX": "exchange",
        "OPTIONS": {
            "CLIENT_CLASS": "django_redis.client.DefaultClient",
            "SOCKET_CONNECT_TIMEOUT": 2,
            "SOCKET_TIMEOUT": 2,
        },
    }
    assert channel_layer_hosts(url) == [url]
    assert celery_broker_settings(url) == {
        "broker_url": url,
        "broker_transport_options": {},
        "result_backend": url,
        "result_backend_transport_options": {},
    }


def test_the_cache_asks_the_sentinels_and_uses_only_the_master():
    options = cache_settings(SENTINEL)

    assert options["LOCATION"] == "redis://mh/6"
    assert options["OPTIONS"]["CONNECTION_FACTORY"] == "django_redis.pool.SentinelConnectionFactory"
    assert options["OPTIONS"]["SENTINELS"] == [
        ("10.77.0.11", 26379),
        ("10.77.0.12", 26380),
        ("10.77.0.13", 26381),
    ]
    # Not django-redis's SentinelClient: it would read from replicas, and lockout counters
    # and book snapshots are read right after they are written.
    assert options["OPTIONS"]["CLIENT_CLASS"] == "django_redis.client.DefaultClient"


def test_passwords_reach_the_master_and_the_sentinels_separately():
    url = "sentinel://:data%2Fpw@h1:26379,h2:26379/2?master=mh&sentinel_password=sentinel-pw"

    cache = cache_settings(url)
    (layer,) = channel_layer_hosts(url)
    celery = celery_broker_settings(url)

    assert cache["LOCATION"] == "redis://:data%2Fpw@mh/2"
    assert cache["OPTIONS"]["SENTINEL_KWARGS"]["password"] == "sentinel-pw"
    assert (layer["password"], layer["sentinel_kwargs"]["password"]) == ("data/pw", "sentinel-pw")
    assert (
        celery["broker_url"] == "sentinel://:data%2Fpw@h1:26379/2;sentinel://:data%2Fpw@h2:26379/2"
    )
    assert celery["broker_transport_options"]["sentinel_kwargs"]["password"] == "sentinel-pw"


def test_the_channel_layer_gets_a_sentinel_host_entry():
    (host,) = channel_layer_hosts(SENTINEL)

    assert host["master_name"] == "mh"
    assert host["sentinels"] == [
        ("10.77.0.11", 26379),
        ("10.77.0.12", 26380),
        ("10.77.0.13", 26381),
    ]
    assert host["db"] == 6
    # Bounded, so a command to a silent master fails and the next asks the sentinels.
    assert host["socket_timeout"] == host["socket_connect_timeout"] == 2


def test_celery_gets_kombus_sentinel_form_for_broker_and_results():
    celery = celery_broker_settings(SENTINEL)

    expected = (
        "sentinel://10.77.0.11:26379/6;sentinel://10.77.0.12:26380/6;sentinel://10.77.0.13:26381/6"
    )
    assert celery["broker_url"] == expected
    assert celery["result_backend"] == expected
    assert celery["broker_transport_options"]["master_name"] == "mh"
    assert celery["result_backend_transport_options"]["master_name"] == "mh"


def test_celery_urls_that_are_not_sentinel_pass_through():
    celery = celery_broker_settings("amqp://guest@rabbit//", "redis://127.0.0.1:6379/3")

    assert celery["broker_url"] == "amqp://guest@rabbit//"
    assert celery["broker_transport_options"] == {}
    assert celery["result_backend"] == "redis://127.0.0.1:6379/3"


def test_tls_to_a_sentinel_group_is_asked_for_everywhere():
    url = "sentinel://h1:26379/0?ssl=true"

    assert cache_settings(url)["OPTIONS"]["CONNECTION_POOL_KWARGS"]["ssl"] is True
    assert cache_settings(url)["OPTIONS"]["SENTINEL_KWARGS"]["ssl"] is True
    assert channel_layer_hosts(url)[0]["ssl"] is True
    assert "ssl_cert_reqs" in celery_broker_settings(url)["broker_use_ssl"]
    assert "ssl_cert_reqs" in celery_broker_settings(url)["redis_backend_use_ssl"]


def test_redis_address_is_the_first_sentinel_or_the_server():
    assert redis_address(SENTINEL) == ("10.77.0.11", 26379)
    assert redis_address("redis://cache.internal/0") == ("cache.internal", 6379)
    assert redis_address("unix:///run/redis.sock") is None


def test_a_client_is_made_from_a_channel_layer_host_entry_too():
    (entry,) = channel_layer_hosts(SENTINEL)

    client = redis_client(entry, socket_timeout=2)
    plain = redis_client({"address": "redis://127.0.0.1:6390/4"})

    assert client.connection_pool.service_name == "mh"
    assert client.connection_pool.connection_kwargs["db"] == 6
    assert client.connection_pool.connection_kwargs["socket_timeout"] == 2
    assert plain.connection_pool.connection_kwargs["port"] == 6390
    assert plain.connection_pool.connection_kwargs["db"] == 4
    with pytest.raises(ImproperlyConfigured, match="'address' or 'sentinels'"):
        redis_client({"host": "127.0.0.1"})
