"""The URLs that name a store: one server, Sentinel's primary, a cluster."""

from __future__ import annotations

import builtins

import pytest
from redis.exceptions import (
    BusyLoadingError,
    ClusterDownError,
    ConnectionError,
    MasterDownError,
    ReadOnlyError,
    RedisClusterException,
    ResponseError,
    TryAgainError,
)

from jobs.infra.connections import (
    ClusterTarget,
    Patience,
    SentinelTarget,
    connect,
    connect_streams,
    is_outage,
)


def test_a_cluster_url_names_its_nodes_with_default_ports_and_a_password():
    target = ClusterTarget.parse("redis+cluster://:s%40cret@10.0.0.1:7000,10.0.0.2")
    assert target == ClusterTarget([("10.0.0.1", 7000), ("10.0.0.2", 6379)], "s@cret")
    assert ClusterTarget.parse("redis://10.0.0.1:6379/0") is None


def test_a_sentinel_url_still_names_its_sentinels_master_and_db():
    target = SentinelTarget.parse("redis+sentinel://:pw@s1:26380,s2/mymaster/2")
    assert target == SentinelTarget([("s1", 26380), ("s2", 26379)], "mymaster", 2, "pw")


async def test_only_the_streams_store_may_be_a_cluster():
    with pytest.raises(ValueError, match="connect_streams"):
        connect("redis+cluster://127.0.0.1:7000", "test")
    client = connect_streams("redis+cluster://127.0.0.1:7000", "test")  # lazy: no connection yet
    assert type(client).__name__ == "_Cluster"
    await client.aclose()


@pytest.mark.parametrize(
    "error",
    [
        ConnectionError("refused"),
        BusyLoadingError("LOADING"),
        ClusterDownError("CLUSTERDOWN The cluster is down"),  # type: ignore[no-untyped-call]
        MasterDownError("MASTERDOWN"),  # type: ignore[no-untyped-call]
        TryAgainError("TRYAGAIN"),  # type: ignore[no-untyped-call]
        ReadOnlyError("READONLY"),
        RedisClusterException("no node answers"),
    ],
    ids=lambda e: type(e).__name__,
)
def test_errors_that_mean_wait_are_an_outage(error: Exception):
    assert is_outage(error)


@pytest.mark.parametrize(
    "error",
    [ResponseError("WRONGTYPE"), builtins.TimeoutError(), builtins.ConnectionRefusedError()],
    ids=["a-bug", "a-deadline-of-ours", "another-service"],
)
def test_other_errors_are_not(error: Exception):
    assert not is_outage(error)  # a bug is a 500 and INTERNAL_ERROR; SMTP's refusal its own


@pytest.mark.parametrize("seconds", [1, 2, 30, 120])
def test_a_patience_tries_for_about_as_long_as_it_is_given(seconds: float):
    patience = Patience.within(seconds)
    waits = [min(patience.cap_s, 0.05 * 2**i) for i in range(patience.retries)]
    assert seconds <= sum(waits) < seconds + patience.cap_s + 0.1
