"""What is particular to the Redis store, on a real redis-server: several processes (store
objects with their own connections) racing on one server, key prefixes, credentials; and a
differential run against SQLite, whose semantics are the reference.

The backend-agnostic contract is ``tests/exporter/test_store.py``.
"""

from __future__ import annotations

import dataclasses
import random
import threading
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest
import redis
from tests.redis_server import RedisServer, redis_available

from vigil.config import ExporterSettings
from vigil_exporter.store import Accepted, AlertStore, Claim, Incoming, identity
from vigil_exporter.store.redis import RedisStore
from vigil_exporter.store.sqlite import SQLiteStore

T0 = 1_800_000_000.0
LEASE = 30.0
T = TypeVar("T")


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    """One real redis-server for the module."""
    if not redis_available():
        pytest.skip("redis-server is not installed (./run test installs it)")
    started = RedisServer.start(tmp_path_factory.mktemp("redis"))
    try:
        yield started
    finally:
        started.stop()


@pytest.fixture
def open_store(server: RedisServer) -> Iterator[Callable[..., RedisStore]]:
    """Opens RedisStores on the server: by default all on one fresh prefix (one shared store,
    as receivers on several hosts see it); closed after the test."""
    made: list[RedisStore] = []
    default_prefix = f"t-{uuid.uuid4().hex[:8]}"

    def build(prefix: str | None = None, url: str | None = None,
              **settings: Any) -> RedisStore:
        store = RedisStore(url or server.url, ExporterSettings(**settings),
                           prefix=prefix or default_prefix)
        made.append(store)
        return store

    yield build
    for store in made:
        store.close()


def alert(name: str = "A", status: str = "firing",
          starts: str = "2026-01-01T00:00:00Z", ends: str = "0001-01-01T00:00:00Z") -> Incoming:
    labels = {"alertname": name}
    payload = {"severity": "high", "component": "x", "message": "m", "metadata": {},
               "source": "alertmanager", "status": status, "labels": labels,
               "annotations": {}, "fingerprint": f"f-{name}"}
    return Incoming(id=uuid.uuid4().hex, identity=identity(labels, ()), status=status,
                    starts_at=starts, ends_at=ends, payload=payload)


def race(workers: int, work: Callable[[int], T | None]) -> list[T]:
    """Run ``work(i)`` in ``workers`` threads released together; their results (re-raising)."""
    barrier = threading.Barrier(workers)
    results: list[T | None] = [None] * workers
    errors: list[BaseException] = []

    def run(i: int) -> None:
        barrier.wait()
        try:
            results[i] = work(i)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(workers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    if errors:
        raise errors[0]
    return [result for result in results if result is not None]


# --- several processes on one server ----------------------------------------------------------


def test_racing_claims_never_hand_out_a_delivery_twice(
        open_store: Callable[..., RedisStore]) -> None:
    """Threads of two store objects claiming at once get every delivery exactly once."""
    stores = [open_store(), open_store()]
    alerts = [alert(f"a{i}") for i in range(200)]
    assert stores[0].accept(alerts, ["h"], T0).stored == 200

    def claim_all(i: int) -> list[str]:
        store, got = stores[i % 2], []
        while (claim := store.claim("h", f"owner-{i}", T0, LEASE)) is not None:
            got.append(claim.alert_id)
        return got

    claimed = [alert_id for got in race(8, claim_all) for alert_id in got]
    assert sorted(claimed) == sorted(a.id for a in alerts)
    stats = stores[1].stats()
    assert (stats.pending_by_handler, stats.running_by_handler) == ({}, {"h": 200})


def test_racing_takeovers_of_an_expired_lease_hand_it_out_once(
        open_store: Callable[..., RedisStore]) -> None:
    """When a lease runs out, of many owners claiming at once exactly one takes it over."""
    stores = [open_store(), open_store()]
    stores[0].accept([alert()], ["h"], T0)
    assert stores[0].claim("h", "crashed", T0, LEASE) is not None

    def take_over(i: int) -> Claim | None:
        return stores[i % 2].claim("h", f"owner-{i}", T0 + LEASE + 1, LEASE)

    winners = race(8, take_over)
    assert len(winners) == 1
    assert winners[0].attempt == 1
    assert stores[1].owners() == {winners[0].owner}


def test_racing_accepts_of_one_alert_store_it_once(
        open_store: Callable[..., RedisStore]) -> None:
    """The same alert sent to several receivers at once (Alertmanager peers) is stored once."""
    stores = [open_store(), open_store()]
    for round_ in range(10):
        copies = [alert(f"same-{round_}") for _ in range(8)]  # one identity, own ids
        def accept_copy(i: int, c: list[Incoming] = copies) -> Accepted:
            return stores[i % 2].accept([c[i]], ["h"], T0)

        results = race(8, accept_copy)
        assert sum(r.stored for r in results) == 1
        assert sum(r.duplicates for r in results) == 7
    assert stores[0].stats().pending_alerts == 10


def test_racing_accepts_respect_the_cap(open_store: Callable[..., RedisStore]) -> None:
    """Concurrent accepts from several receivers never fill the store past store_max_alerts."""
    stores = [open_store(store_max_alerts=5), open_store(store_max_alerts=5)]
    stores[0].accept([alert("first")], ["h"], T0)
    results = race(12, lambda i: stores[i % 2].accept([alert(f"n{i}")], ["h"], T0))
    assert sum(r.stored for r in results) == 4
    assert sum(r.status == "full" for r in results) == 8
    assert stores[1].stats().pending_alerts == 5


@pytest.mark.parametrize("due_after", [200, 50])
def test_claim_skips_a_long_backlog_of_waiting_retries(
        open_store: Callable[..., RedisStore], due_after: int) -> None:
    """Behind 150 retries not yet due the oldest due delivery is found (whether the claim
    script walks the queue or the due ones), and an expired lease still wins by age."""
    store = open_store()
    alerts = [alert(f"b{i}") for i in range(150 + due_after)]
    store.accept(alerts, ["h"], T0)
    for _ in range(150):
        claim = store.claim("h", "me", T0, LEASE)
        assert claim is not None
        store.retry(claim, "later", T0 + 1000)
    first_due = store.claim("h", "me", T0 + 1, LEASE)
    assert first_due is not None
    assert first_due.alert_id == alerts[150].id
    again = store.claim("h", "other", T0 + 1 + LEASE + 1, LEASE)  # its lease ran out
    assert again is not None
    assert (again.alert_id, again.attempt) == (alerts[150].id, 1)
    nxt = store.claim("h", "other", T0 + 1 + LEASE + 1, LEASE)
    assert nxt is not None
    assert nxt.alert_id == alerts[151].id
    retried = store.claim("h", "other", T0 + 1000, LEASE)
    assert retried is not None
    assert (retried.alert_id, retried.attempt) == (alerts[0].id, 2)


# --- prefixes and credentials -------------------------------------------------------------------


def test_what_sqlites_unique_constraints_refuse_raises_and_writes_nothing(
        open_store: Callable[..., RedisStore]) -> None:
    """A handler named twice, an id twice in one batch or an id already stored: ValueError,
    and nothing of the refused batch is written (its identities are not remembered either)."""
    store = open_store()
    first = alert("A")
    assert store.accept([first], ["h"], T0).stored == 1
    twin = alert("C")
    other_identity = dataclasses.replace(twin, identity=identity({"alertname": "D"}, ()))
    refused = [([alert("B")], ["h", "h"], "duplicate handler names"),
               ([twin, other_identity], ["h"], "unique"),
               ([dataclasses.replace(alert("E"), id=first.id)], ["h"], "unique")]
    for batch, handlers, message in refused:
        with pytest.raises(ValueError, match=message):
            store.accept(batch, handlers, T0)
    assert store.stats().pending_alerts == 1
    again = [alert("B"), alert("C"), alert("D"), alert("E")]
    assert store.accept(again, ["h"], T0) == Accepted("accepted", 4, 0,
                                                      tuple(a.id for a in again))


def test_a_batch_is_decided_alert_by_alert(open_store: Callable[..., RedisStore]) -> None:
    """An empty batch is accepted with nothing stored; within one batch a repeat of an earlier
    alert is a redelivery, and a later status of the same identity is fresh."""
    store = open_store()
    assert store.accept([], ["h"], T0) == Accepted("accepted")
    resolved = {"status": "resolved", "ends": "2026-01-01T00:05:00Z"}
    batch = [alert("A"), alert("A"), alert("A", **resolved)]
    result = store.accept(batch, ["h"], T0)
    assert (result.stored, result.duplicates) == (2, 1)
    assert result.new_ids == (batch[0].id, batch[2].id)
    assert store.accept([alert("A", **resolved)], ["h"], T0).duplicates == 1


def test_a_different_prefix_is_a_separate_store(
        open_store: Callable[..., RedisStore], server: RedisServer) -> None:
    """Two prefixes on one server share nothing, and every key lives under its prefix."""
    one, two = open_store(prefix="one-" + uuid.uuid4().hex[:6]), open_store(
        prefix="two-" + uuid.uuid4().hex[:6])
    first = alert("A")
    one.accept([first], ["h"], T0)
    claim = one.claim("h", "me", T0, LEASE)
    assert claim is not None
    one.dead_letter(claim, "boom", T0)
    assert two.stats().pending_alerts == 0
    assert two.dead_letters(10) == []
    assert two.claim("h", "me", T0, LEASE) is None
    assert two.accept([alert("A")], ["h"], T0).stored == 1  # not a redelivery there
    client = redis.Redis.from_url(server.url)
    try:
        for store in (one, two):
            keys = [key.decode() for key in client.scan_iter(match=f"*{store.prefix}*")]
            assert keys
            assert all(key.startswith("{" + store.prefix + "}:") for key in keys)
    finally:
        client.close()


def test_repr_masks_the_password(open_store: Callable[..., RedisStore],
                                 server: RedisServer) -> None:
    """A store opened with user:password@ works, and its repr does not show the password."""
    client = redis.Redis.from_url(server.url)
    try:
        client.acl_setuser("vigil", enabled=True, passwords=["+s3cret-pw"],
                           keys=["*"], channels=["*"], commands=["+@all"])
    finally:
        client.close()
    url = f"redis://vigil:s3cret-pw@127.0.0.1:{server.port}/0"
    store = open_store(url=url)
    assert store.accept([alert()], ["h"], T0).stored == 1
    shown = repr(store)
    assert "s3cret-pw" not in shown
    assert f"127.0.0.1:{server.port}/0" in shown
    assert "s3cret-pw" not in repr(open_store(url=url + "?password=s3cret-pw"))
    with pytest.raises(redis.AuthenticationError):
        open_store(url=f"redis://vigil:wrong@127.0.0.1:{server.port}/0")


def test_another_layout_version_is_refused(open_store: Callable[..., RedisStore],
                                           server: RedisServer) -> None:
    """A prefix holding another layout version is not opened (as SQLite's schema check)."""
    prefix = f"v-{uuid.uuid4().hex[:8]}"
    client = redis.Redis.from_url(server.url)
    try:
        client.set("{" + prefix + "}:schema", "99")
    finally:
        client.close()
    with pytest.raises(RuntimeError, match="version 99"):
        open_store(prefix=prefix)


# --- the same semantics as SQLite -----------------------------------------------------------------


@pytest.mark.parametrize("seed", range(12))
def test_random_operations_give_what_sqlite_gives(
        seed: int, open_store: Callable[..., RedisStore], tmp_path: Path) -> None:
    """On a random sequence of every operation, Redis answers exactly as SQLite does."""
    rng = random.Random(seed)
    settings: dict[str, Any] = {"store_max_alerts": rng.choice([2, 4, 50]),
                                "store_max_bytes": rng.choice([600, 2000, 10**6]),
                                "webhook_dedup_size": rng.choice([1, 3, 100]),
                                "dead_letter_limit": rng.choice([0, 2, 100])}
    stores: list[AlertStore] = [SQLiteStore(tmp_path, ExporterSettings(**settings)),
                                open_store(**settings)]
    starts = ["2026-01-01T00:00:00Z", "2026-01-01T00:10:00Z", "2026-01-01T00:20:00Z"]
    ends = ["0001-01-01T00:00:00Z", "2026-01-01T00:05:00Z", "2026-01-01T00:15:00Z"]
    owners, handlers = ["o1", "o2", "o3"], ["h1", "h2"]
    claims: list[Claim] = []
    now = T0
    try:
        for step in range(300):
            now += rng.choice([0.5, 1.0, 20.0])
            op = rng.choice(["accept", "accept", "claim", "claim", "claim", "complete",
                             "retry", "dead", "renew", "release", "read"])
            answers: list[Any] = []
            if op == "accept":
                batch = [alert(f"n{rng.randrange(5)}", rng.choice(["firing", "resolved"]),
                               rng.choice(starts), rng.choice(ends))
                         for _ in range(rng.randrange(4))]
                names = rng.choice([[], ["h1"], handlers])
                answers = [s.accept(batch, names, now) for s in stores]
            elif op == "claim":
                at = now - rng.choice([0, 0, 40.0])  # now and then a clock behind
                handler, owner = rng.choice(handlers), rng.choice(owners)
                answers = [s.claim(handler, owner, at, LEASE) for s in stores]
                if answers[0] is not None:
                    claims.append(answers[0])
            elif op in ("complete", "retry", "dead") and claims:
                claim, due = rng.choice(claims), now + rng.choice([0.0, 5.0, 60.0])
                for s in stores:
                    if op == "complete":
                        s.complete(claim)
                    elif op == "retry":
                        s.retry(claim, f"Error {step}", due)
                    else:
                        answers.append(s.dead_letter(claim, f"Dead {step}", now))
            elif op == "renew":
                owner = rng.choice(owners)
                held = [(c.alert_id, c.handler) for c in claims
                        if c.owner == owner and rng.random() < 0.7]
                for s in stores:
                    s.renew(owner, now + LEASE, held)
            elif op == "release":
                owner = rng.choice(owners)
                answers = [s.release(owner) for s in stores]
            limit = rng.choice([-1, 0, 1, 3])
            views = [(s.stats(), s.owners(), s.dead_letters(limit)) for s in stores]
            assert answers[:1] == answers[1:], f"step {step}: {op}"
            assert views[0] == views[1], f"step {step}: {op}"
    finally:
        stores[0].close()
