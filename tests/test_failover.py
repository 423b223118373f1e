"""Failover without loss: writers under a primary kill (Sentinel, Cluster) and a slot migration
(Cluster), with and without the replica wait (REDIS_WAIT_REPLICAS).  Real servers on loopback,
CI-sized (4 writers x 100 appends); bench/faults.py runs the full-size scenarios (8 x 500).

The primary kills happen while its replica lags (cut off for 0.6 s just before the kill: frozen with
SIGSTOP and its link dropped): the writes the primary acknowledged in that time exist nowhere else.  Asserted:
- with ``REDIS_WAIT_REPLICAS=1`` no acknowledged append is lost (those writes were never acknowledged:
  the writers got DurabilityError and retried them after the failover);
- without it, the acknowledged appends of the lag window are lost (asynchronous replication: the
  window the documentation states);
- a slot migration under load loses nothing, with or without the wait (no data node dies);
- always: each append stored at most once (retries with the same event are idempotent), every
  writer recovers, and every error a writer sees is one of ours (RedisUnavailableError and its
  subclasses RedisOutcomeUnknownError and DurabilityError), never redis-py's own.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import redis
from google.adk.errors._stale_session_error import StaleSessionError

from adk_redis.errors import DurabilityError, RedisUnavailableError

from .failover_load import LoadResult, cluster_kill, cluster_reshard, sentinel_kill
from .servers import RedisServer, SentinelTopology, redis_cluster

WRITERS, APPENDS = 4, 100
LAG_S = 0.6  # longer than the wait timeout (500 ms): the writes of the window get DurabilityError
PACE = {"pause_s": 0.01, "fault_at": 0.25}  # writers still busy when the primary dies
GIVE_UP_S = 40.0


def _check_common(result: LoadResult, label: str, *, lossy: bool = False) -> None:
    print(f"\n{label}: {result.summary()}")
    assert result.duplicates == 0
    assert result.gave_up == 0 and result.sessions_lost == 0, result.summary()
    assert len(result.acknowledged) == WRITERS * APPENDS  # every append acknowledged in the end
    assert result.recovered_at is not None, "some writer never recovered"
    for exc in result.error_objects:
        # Our typed errors only: RedisUnavailableError (RedisOutcomeUnknownError, DurabilityError), never
        # redis-py's own; after a loss also StaleSessionError (the writer's object is ahead of storage).
        if lossy and isinstance(exc, StaleSessionError):
            continue
        assert isinstance(exc, RedisUnavailableError), repr(exc)
    if not lossy:
        assert result.stale_reloads == 0


# -- Sentinel: 3 sentinels, a primary and a replica ------------------------------------------------
@pytest.fixture
def sentinels() -> Iterator[SentinelTopology]:
    topology = SentinelTopology(sentinels=3, replicas=1)
    try:
        yield topology
    finally:
        topology.stop()


async def test_sentinel_primary_kill_with_replica_wait_loses_nothing(sentinels: SentinelTopology) -> None:
    result, timings = await sentinel_kill(
        sentinels, wait=1, writers=WRITERS, appends=APPENDS, lag_s=LAG_S, give_up_s=GIVE_UP_S, **PACE
    )
    _check_common(result, f"sentinel kill -9 after a {LAG_S} s replica lag, wait_replicas=1 {timings}")
    assert result.lost == set(), sorted(result.lost)[:10]
    assert result.errors["DurabilityError"] > 0  # the lag window: refused, not acknowledged
    assert result.stale_reloads == 0


async def test_sentinel_primary_kill_without_replica_wait_loses_the_lag_window(
    sentinels: SentinelTopology,
) -> None:
    result, timings = await sentinel_kill(
        sentinels, wait=0, writers=WRITERS, appends=APPENDS, lag_s=LAG_S, give_up_s=GIVE_UP_S, **PACE
    )
    _check_common(
        result, f"sentinel kill -9 after a {LAG_S} s replica lag, wait_replicas=0 {timings}", lossy=True
    )
    # Acknowledged while the replica lagged, gone with the primary: the replication window.
    assert len(result.lost) > 0
    assert result.errors["DurabilityError"] == 0


# -- Cluster: 3 primaries with a replica each ---------------------------------------------------------
@pytest.fixture(scope="module")
def cluster() -> Iterator[list[RedisServer]]:
    """Shared by the tests below, in order: the migrations, then the kill (the killed node rejoins)."""
    with redis_cluster(3, replicas=1, node_timeout_ms=1000) as nodes:
        yield nodes


@pytest.mark.parametrize("wait", [0, 1], ids=["no-wait", "wait-replicas-1"])
async def test_cluster_reshard_under_load(cluster: list[RedisServer], wait: int) -> None:
    result, info = await cluster_reshard(
        cluster, wait=wait, writers=WRITERS, appends=APPENDS, give_up_s=GIVE_UP_S
    )
    _check_common(result, f"cluster slot migration, wait_replicas={wait} {info}")
    assert info["keys_moved"] >= WRITERS * 5  # the sessions' keys really moved, several per slot
    assert result.acks_after_fault_done > 0  # the writers kept writing through the whole migration
    if wait:
        assert info["durable_redirects_followed"] > 0  # ASK / TRYAGAIN / MOVED met on the durable path
    # No data node died: nothing acknowledged may be lost, whatever the wait setting.
    assert result.lost == set() and result.stored == result.acknowledged


async def test_cluster_primary_kill_with_replica_wait_loses_nothing(cluster: list[RedisServer]) -> None:
    result, timings = await cluster_kill(
        cluster, wait=1, writers=WRITERS, appends=APPENDS, lag_s=LAG_S, give_up_s=GIVE_UP_S, **PACE
    )
    _check_common(result, f"cluster kill -9 after a {LAG_S} s replica lag, wait_replicas=1 {timings}")
    assert result.lost == set(), sorted(result.lost)[:10]
    assert result.errors["DurabilityError"] > 0


def test_durability_error_is_a_connection_error() -> None:
    """What writers catch: DurabilityError is a RedisOutcomeUnknownError (a RedisUnavailableError,
    redis-py's and the built-in ConnectionError), so retry loops and fallbacks written for outages
    handle it too; it survives pickling (worker processes)."""
    import pickle

    from adk_redis.errors import RedisOutcomeUnknownError

    err = DurabilityError("x", requested=1, acknowledged=0)
    assert isinstance(err, RedisOutcomeUnknownError) and err.kind == "durability"
    again = pickle.loads(pickle.dumps(err))
    assert type(again) is DurabilityError and (again.requested, again.acknowledged, str(again)) == (1, 0, "x")
    assert isinstance(err, redis.exceptions.ConnectionError) and isinstance(err, ConnectionError)
    assert (err.requested, err.acknowledged, err.fsynced) == (1, 0, True)
