"""The URLs that name a store: one server, Sentinel's primary, a cluster."""

from __future__ import annotations

import pytest

from jobs.connections import ClusterTarget, SentinelTarget, connect, connect_streams


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
