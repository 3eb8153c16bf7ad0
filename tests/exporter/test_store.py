"""The alert store's contract, run against every backend (SQLite, and Redis on a real server).

Times are plain numbers passed as ``now``: the store never reads a clock itself.
"""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from tests.redis_server import RedisServer, redis_available

from vigil.config import ExporterSettings
from vigil_exporter.store import (
    AlertStore,
    Episode,
    Incoming,
    identity,
    is_redelivery,
    owner_id,
    owner_is_dead,
)
from vigil_exporter.store.sqlite import SQLiteStore

REPLICAS = ("replica", "prometheus_replica", "__replica__")
T0 = 1_800_000_000.0
LEASE = 30.0


def incoming(name: str = "A", status: str = "firing", starts: str = "2026-01-01T00:00:00Z",
             ends: str = "0001-01-01T00:00:00Z", **labels: str) -> Incoming:
    """An alert as the webhook hands it to the store."""
    all_labels = {"alertname": name, **labels}
    payload = {"severity": "high", "component": "c", "message": f"{name} is bad",
               "metadata": {"startsAt": starts}, "source": "alertmanager", "status": status,
               "labels": all_labels, "annotations": {}, "fingerprint": f"fp-{name}"}
    return Incoming(id=uuid.uuid4().hex, identity=identity(all_labels, REPLICAS),
                    status=status, starts_at=starts, ends_at=ends, payload=payload)


# --- backends -------------------------------------------------------------------------------

Factory = Callable[..., AlertStore]


@pytest.fixture(scope="module")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    """One real redis-server for the module's Redis cases."""
    if not redis_available():
        pytest.skip("redis-server is not installed (./run test installs it)")
    server = RedisServer.start(tmp_path_factory.mktemp("redis"))
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(params=["sqlite", "redis"])
def make_store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Factory]:
    """Builds stores of one backend; each call opens the same store again (another process's
    view, or the same one after a restart)."""
    made: list[AlertStore] = []
    name = uuid.uuid4().hex[:8]

    def build(**settings: Any) -> AlertStore:
        config = ExporterSettings(**settings)
        store: AlertStore
        if request.param == "sqlite":
            store = SQLiteStore(tmp_path / "state", config)
        else:
            from vigil_exporter.store.redis import RedisStore

            server: RedisServer = request.getfixturevalue("redis_server")
            store = RedisStore(server.url, config, prefix=f"test-{name}")
        made.append(store)
        return store

    yield build
    for store in made:
        store.close()


# --- accepting ------------------------------------------------------------------------------


def test_accepted_alerts_wait_for_each_handler_in_order(make_store: Factory) -> None:
    """Each accepted alert gets one delivery per handler, claimed oldest first."""
    store = make_store()
    a, b = incoming("A"), incoming("B")
    result = store.accept([a, b], ["h1", "h2"], T0)
    assert (result.status, result.stored, result.duplicates) == ("accepted", 2, 0)
    assert set(result.new_ids) == {a.id, b.id}
    stats = store.stats()
    assert (stats.pending_alerts, stats.pending_by_handler) == (2, {"h1": 2, "h2": 2})
    first = store.claim("h1", "me", T0, LEASE)
    assert first is not None
    assert (first.alert_id, first.handler, first.attempt) == (a.id, "h1", 1)
    assert first.payload == dict(a.payload)
    assert first.received_at == T0
    second = store.claim("h1", "me", T0, LEASE)
    assert second is not None
    assert second.alert_id == b.id
    assert store.claim("h1", "me", T0, LEASE) is None


def test_an_alert_leaves_the_store_once_every_handler_completed(make_store: Factory) -> None:
    """Completing one handler's delivery leaves the other's; the alert goes with the last."""
    store = make_store()
    store.accept([incoming()], ["h1", "h2"], T0)
    one = store.claim("h1", "me", T0, LEASE)
    assert one is not None
    store.complete(one)
    assert store.stats().pending_alerts == 1
    assert store.claim("h1", "me", T0, LEASE) is None
    two = store.claim("h2", "me", T0, LEASE)
    assert two is not None
    store.complete(two)
    stats = store.stats()
    assert (stats.pending_alerts, stats.pending_bytes) == (0, 0)
    assert stats.pending_by_handler == {}
    assert stats.running_by_handler == {}


def test_payloads_come_back_unchanged(make_store: Factory) -> None:
    """Unicode, nesting and numbers survive the store."""
    store = make_store()
    alert = incoming("Ünïcødé ✓")
    alert = dataclasses.replace(alert, payload={**alert.payload,
                                                "metadata": {"n": [1, 2.5, None, {"k": "✓"}]}})
    store.accept([alert], ["h"], T0)
    claim = store.claim("h", "me", T0, LEASE)
    assert claim is not None
    assert claim.payload == alert.payload


def test_without_handlers_alerts_are_remembered_not_stored(make_store: Factory) -> None:
    """No handler: nothing waits, but a redelivery is still recognised."""
    store = make_store()
    first = store.accept([incoming()], [], T0)
    assert (first.stored, store.stats().pending_alerts) == (1, 0)
    assert store.accept([incoming()], [], T0).duplicates == 1


def test_accepted_alerts_survive_reopening(make_store: Factory) -> None:
    """A store opened again (a restart, another process) holds what was committed."""
    make_store().accept([incoming("A")], ["h"], T0)
    again = make_store()
    claim = again.claim("h", "me", T0, LEASE)
    assert claim is not None
    assert claim.payload["labels"]["alertname"] == "A"
    assert again.accept([incoming("A")], ["h"], T0).duplicates == 1


# --- de-duplication ---------------------------------------------------------------------------


def test_a_redelivery_is_dropped_and_a_status_change_is_not(make_store: Factory) -> None:
    """Firing twice is one alert; its resolution is news; a later episode is news again."""
    store = make_store()
    assert store.accept([incoming(starts="2026-01-01T00:00:00Z")], ["h"], T0).stored == 1
    assert store.accept([incoming(starts="2026-01-01T00:00:00Z")], ["h"], T0).duplicates == 1
    resolved = incoming(status="resolved", starts="2026-01-01T00:00:00Z",
                        ends="2026-01-01T00:10:00Z")
    assert store.accept([resolved], ["h"], T0).stored == 1
    assert store.accept([resolved], ["h"], T0).duplicates == 1
    later = incoming(starts="2026-01-01T01:00:00Z")
    assert store.accept([later], ["h"], T0).stored == 1


def test_the_replicas_of_an_ha_pair_are_one_alert(make_store: Factory) -> None:
    """The same alert from replica a and b (other startsAt) in one notification is stored once,
    and the lagging replica's firing after the resolution is a redelivery too."""
    store = make_store()
    a = incoming(starts="2026-01-01T00:00:00.100Z", replica="a")
    b = incoming(starts="2026-01-01T00:00:02.900Z", replica="b")
    assert a.identity == b.identity
    result = store.accept([a, b], ["h"], T0)
    assert (result.stored, result.duplicates) == (1, 1)
    resolved_a = incoming(status="resolved", starts="2026-01-01T00:00:00.100Z",
                          ends="2026-01-01T00:05:00.100Z", replica="a")
    still_b = incoming(starts="2026-01-01T00:00:02.900Z", replica="b")
    result = store.accept([still_b, resolved_a], ["h"], T0)
    assert (result.stored, result.duplicates) == (1, 1)
    resolved_b = incoming(status="resolved", starts="2026-01-01T00:00:02.900Z",
                          ends="2026-01-01T00:05:02.900Z", replica="b")
    assert store.accept([resolved_b], ["h"], T0).duplicates == 1
    assert store.stats().pending_by_handler == {"h": 2}  # one firing, one resolved


def test_identities_are_counted_not_alerts(make_store: Factory) -> None:
    """webhook_dedup_size counts identities: repeats of one do not push another out."""
    store = make_store(webhook_dedup_size=2)
    store.accept([incoming("a"), incoming("b")], [], T0)
    for _ in range(5):
        assert store.accept([incoming("a")], [], T0).duplicates == 1
    assert store.accept([incoming("b")], [], T0).duplicates == 1


def test_identities_are_bounded_least_recently_seen_first(make_store: Factory) -> None:
    """Past webhook_dedup_size the identity seen longest ago is forgotten."""
    store = make_store(webhook_dedup_size=2)
    store.accept([incoming("a")], [], T0)
    store.accept([incoming("b")], [], T0)
    assert store.accept([incoming("a")], [], T0).duplicates == 1  # touches a
    store.accept([incoming("c")], [], T0)  # forgets b
    assert store.accept([incoming("a")], [], T0).duplicates == 1
    assert store.accept([incoming("b")], [], T0).stored == 1


# --- caps -------------------------------------------------------------------------------------


def test_a_full_store_refuses_and_forgets_the_whole_notification(make_store: Factory) -> None:
    """Past store_max_alerts nothing is stored or remembered; once room is made the retry is
    taken as new."""
    store = make_store(store_max_alerts=2)
    store.accept([incoming("a"), incoming("b")], ["h"], T0)
    refused = store.accept([incoming("c")], ["h"], T0)
    assert (refused.status, refused.stored) == ("full", 0)
    assert store.stats().pending_alerts == 2
    claim = store.claim("h", "me", T0, LEASE)
    assert claim is not None
    store.complete(claim)
    retried = store.accept([incoming("c")], ["h"], T0)
    assert (retried.status, retried.stored) == ("accepted", 1)


def test_the_byte_cap_refuses_too(make_store: Factory) -> None:
    """Past store_max_bytes the webhook is refused even with few alerts."""
    one = incoming("a")
    size = len(one.encoded().encode())
    store = make_store(store_max_bytes=size + 10)
    assert store.accept([one], ["h"], T0).accepted
    assert store.stats().pending_bytes == size
    assert store.accept([incoming("b")], ["h"], T0).status == "full"


def test_an_empty_store_takes_one_notification_bigger_than_the_caps(make_store: Factory) -> None:
    """A notification larger than the caps cannot be refused forever: an empty store takes it."""
    store = make_store(store_max_alerts=1, store_max_bytes=1)
    assert store.accept([incoming("a"), incoming("b")], ["h"], T0).stored == 2
    assert store.accept([incoming("c")], ["h"], T0).status == "full"


def test_dead_letters_do_not_count_against_the_caps(make_store: Factory) -> None:
    """A dead-lettered alert no longer waits, so it does not hold the webhook at 503."""
    store = make_store(store_max_alerts=1)
    store.accept([incoming("a")], ["h"], T0)
    claim = store.claim("h", "me", T0, LEASE)
    assert claim is not None
    store.dead_letter(claim, "boom", T0)
    assert store.accept([incoming("b")], ["h"], T0).accepted


# --- claims, leases, retries, dead letters ------------------------------------------------------


def test_a_claimed_delivery_is_not_handed_out_until_its_lease_runs_out(
        make_store: Factory) -> None:
    """Another owner cannot claim it while leased; after the lease it can, same attempt."""
    store = make_store()
    store.accept([incoming()], ["h"], T0)
    mine = store.claim("h", "me", T0, LEASE)
    assert mine is not None
    assert store.claim("h", "other", T0 + LEASE - 1, LEASE) is None
    theirs = store.claim("h", "other", T0 + LEASE + 1, LEASE)
    assert theirs is not None
    assert (theirs.alert_id, theirs.attempt, theirs.owner) == (mine.alert_id, 1, "other")


def test_renewing_a_lease_keeps_the_delivery(make_store: Factory) -> None:
    """The heartbeat's renew moves the lease forward for the deliveries the owner names."""
    store = make_store()
    store.accept([incoming()], ["h"], T0)
    claim = store.claim("h", "me", T0, LEASE)
    assert claim is not None
    store.renew("me", T0 + 3 * LEASE, [(claim.alert_id, "h")])
    assert store.claim("h", "other", T0 + 2 * LEASE, LEASE) is None
    assert store.owners() == {"me"}


def test_renew_leaves_out_what_the_owner_does_not_name(make_store: Factory) -> None:
    """A claim the owner lost track of (its answer lost) is not renewed: it is handed out
    again when its lease runs out; another owner's names do not renew it either."""
    store = make_store()
    store.accept([incoming("a"), incoming("b")], ["h"], T0)
    known = store.claim("h", "me", T0, LEASE)
    lost = store.claim("h", "me", T0, LEASE)
    assert known is not None
    assert lost is not None
    store.renew("me", T0 + 3 * LEASE, [(known.alert_id, "h")])
    store.renew("other", T0 + 3 * LEASE, [(lost.alert_id, "h")])
    again = store.claim("h", "other", T0 + LEASE + 1, LEASE)
    assert again is not None
    assert again.alert_id == lost.alert_id
    assert store.claim("h", "other", T0 + LEASE + 1, LEASE) is None


def test_release_hands_an_owners_deliveries_out_again(make_store: Factory) -> None:
    """release(owner) makes its running deliveries pending at once."""
    store = make_store()
    store.accept([incoming("a"), incoming("b")], ["h"], T0)
    assert store.claim("h", "dead", T0, LEASE) is not None
    assert store.release("dead") == 1
    assert store.owners() == set()
    claim = store.claim("h", "me", T0, LEASE)
    assert claim is not None
    assert claim.attempt == 1


def test_a_retry_waits_until_due_with_the_next_attempt(make_store: Factory) -> None:
    """retry() makes the delivery pending again, not before ``due``, attempt + 1."""
    store = make_store()
    store.accept([incoming()], ["h"], T0)
    claim = store.claim("h", "me", T0, LEASE)
    assert claim is not None
    store.retry(claim, "ValueError: no", T0 + 10)
    assert store.claim("h", "me", T0 + 9, LEASE) is None
    again = store.claim("h", "me", T0 + 10, LEASE)
    assert again is not None
    assert again.attempt == 2


def test_a_retrying_delivery_does_not_hold_up_later_ones(make_store: Factory) -> None:
    """While the oldest waits for its retry time, the next alert is claimed."""
    store = make_store()
    a, b = incoming("a"), incoming("b")
    store.accept([a, b], ["h"], T0)
    first = store.claim("h", "me", T0, LEASE)
    assert first is not None
    store.retry(first, "boom", T0 + 60)
    nxt = store.claim("h", "me", T0 + 1, LEASE)
    assert nxt is not None
    assert nxt.alert_id == b.id


def test_dead_letters_are_kept_listed_and_trimmed(make_store: Factory) -> None:
    """dead_letter() keeps the delivery with its error; past the limit the oldest go."""
    store = make_store(dead_letter_limit=2)
    alerts = [incoming(name) for name in "abc"]
    store.accept(alerts, ["h"], T0)
    discarded = []
    for i in range(3):
        claim = store.claim("h", "me", T0 + i, LEASE)
        assert claim is not None
        discarded.append(store.dead_letter(claim, f"Error {i}", T0 + i))
    assert discarded == [0, 0, 1]
    letters = store.dead_letters(10)
    assert [d.alert_id for d in letters] == [alerts[2].id, alerts[1].id]
    assert (letters[0].handler, letters[0].attempts, letters[0].error) == ("h", 1, "Error 2")
    assert letters[0].payload == dict(alerts[2].payload)
    stats = store.stats()
    assert (stats.dead_letters, stats.pending_alerts) == (2, 0)
    assert store.claim("h", "me", T0 + 100, LEASE) is None


def test_open_alert_ids_name_the_alerts_a_handler_has_not_finished(make_store: Factory) -> None:
    """open_alert_ids lists, newest first and up to the limit, the alerts with a delivery still
    pending or running (claimed); completed and dead-lettered ones leave the list."""
    store = make_store()
    a, b, c, d = (incoming(name) for name in "abcd")
    store.accept([a, b], ["h1", "h2"], T0)
    store.accept([c, d], ["h1"], T0 + 1)
    assert store.open_alert_ids(10) == [d.id, c.id, b.id, a.id]
    assert store.open_alert_ids(2) == [d.id, c.id]
    assert store.open_alert_ids(0) == []
    for handler in ("h1", "h2"):  # a: completed by both handlers
        claim = store.claim(handler, "me", T0 + 2, LEASE)
        assert claim is not None
        assert claim.alert_id == a.id
        store.complete(claim)
    running = store.claim("h1", "me", T0 + 2, LEASE)  # b for h1: running, and h2 pending
    assert running is not None
    assert running.alert_id == b.id
    assert store.open_alert_ids(10) == [d.id, c.id, b.id]
    store.complete(running)
    assert store.open_alert_ids(10) == [d.id, c.id, b.id]  # h2 has not called it yet
    for expected in (c, d):  # c and d given up on by their one handler
        claim = store.claim("h1", "me", T0 + 3, LEASE)
        assert claim is not None
        assert claim.alert_id == expected.id
        store.dead_letter(claim, "gave up", T0 + 3)
    assert store.open_alert_ids(10) == [b.id]
    assert store.open_alert_ids(-1) == [b.id]


def test_complete_after_a_takeover_is_harmless(make_store: Factory) -> None:
    """A slow owner completing after its lease was taken over removes the delivery once."""
    store = make_store()
    store.accept([incoming()], ["h"], T0)
    slow = store.claim("h", "slow", T0, LEASE)
    fast = store.claim("h", "fast", T0 + LEASE + 1, LEASE)
    assert slow is not None
    assert fast is not None
    store.complete(fast)
    store.complete(slow)
    assert store.stats().pending_alerts == 0


# --- the pure pieces ----------------------------------------------------------------------------


def test_identity_ignores_only_the_replica_labels() -> None:
    """Replica labels do not change the identity; any other label does."""
    base = {"alertname": "A", "job": "j"}
    assert identity({**base, "replica": "a"}, REPLICAS) == identity(base, REPLICAS)
    assert identity({**base, "__replica__": "b"}, REPLICAS) == identity(base, REPLICAS)
    assert identity({**base, "instance": "x"}, REPLICAS) != identity(base, REPLICAS)
    assert identity({**base, "replica": "a"}, ()) != identity(base, ())


@pytest.mark.parametrize(("previous", "status", "starts", "redelivery"), [
    (None, "firing", "2026-01-01T00:00:00Z", False),
    (Episode("firing", "2026-01-01T00:00:00Z", ""), "firing", "2026-01-01T00:00:09Z", True),
    (Episode("resolved", "t", "2026-01-01T00:05:00Z"), "firing", "2026-01-01T00:04:00Z", True),
    (Episode("resolved", "t", "2026-01-01T00:05:00Z"), "firing", "2026-01-01T00:06:00Z", False),
    (Episode("firing", "2026-01-01T00:00:00Z", ""), "resolved", "2026-01-01T00:00:00Z", False),
    (Episode("resolved", "t", "2026-01-01T00:05:00.123456789Z"), "resolved",
     "2026-01-01T00:00:00Z", True),
    (Episode("resolved", "t", "2026-01-01T00:05:00Z"), "resolved",
     "2026-01-01T00:07:00.5+01:00", True),  # 23:07 the day before: an older episode
    (Episode("resolved", "x", "garbage"), "firing", "garbage", True),
    (Episode("resolved", "x", "garbage"), "firing", "other garbage", False),
])
def test_is_redelivery(previous: Episode | None, status: str, starts: str,
                       redelivery: bool) -> None:
    """The de-duplication rule, case by case (nanoseconds, offsets, unparsable times)."""
    assert is_redelivery(previous, status, starts) is redelivery


def test_owner_is_dead_tells_a_dead_process_from_a_live_one() -> None:
    """This process is alive; a finished child is dead; another host's owner is not judged."""
    assert not owner_is_dead(owner_id())
    child = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                           capture_output=True, text=True, check=True)
    pid = int(child.stdout)
    if pid != os.getpid():
        assert owner_is_dead(owner_id().rsplit(":", 2)[0] + f":{pid}:1.000")
    assert not owner_is_dead("elsewhere:1:1.000")
    assert not owner_is_dead("garbage")
