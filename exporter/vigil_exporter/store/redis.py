"""The shared alert store: Redis (``exporter.store_url: redis://...``), for receivers on several
hosts.

Same contract as :class:`~vigil_exporter.store.sqlite.SQLiteStore` (the semantics there are
the reference; ``tests/exporter/test_store.py`` runs against both). What differs is how each
operation is made atomic across processes:

- :meth:`RedisStore.accept` keeps its decisions in Python, shared with SQLite
  (:func:`~vigil_exporter.store.is_redelivery`, the caps). It WATCHes what other accepts
  change (``P:touch``, written by every accept of an alert, and ``P:seq``), reads what it needs
  in one snapshot (a MULTI/EXEC of reads), decides, and commits in MULTI/EXEC; when another
  accept committed meanwhile, EXEC fails and it decides again. The pending totals are read,
  not watched: only an accept raises them and the delivery side only lowers them, so an
  ``"accepted"`` decided on totals that fell meanwhile is the one it would be at EXEC (the caps
  refuse only higher totals), and completing deliveries never makes the webhook start over. A
  ``"full"`` answer writes nothing: the snapshot is its consistent view.
- Everything else (claim, complete, retry, dead_letter, renew, release, stats, dead_letters)
  is one Lua script each: Redis runs a script alone, so two processes never claim the same
  delivery.

Durability is Redis's: an accepted alert is in Redis's memory when the webhook answers 2xx;
run Redis with ``appendonly yes`` (and ``appendfsync always`` to survive a power cut of the
Redis host) for the guarantee the SQLite store gives, and with ``maxmemory-policy noeviction``
(an evicting policy would drop stored alerts; the caps bound what the store holds).

Key layout (``P`` is ``{prefix}``: the braces are a Redis Cluster hash tag, so every key of a
store is in one slot; ``seq`` is an alert's position in accept order):

=========================  ======  ============================================================
``P:schema``               string  layout version (``SCHEMA_VERSION``)
``P:seq``                  string  the last alert ``seq`` handed out
``P:ids``                  hash    alert id -> ``seq``
``P:a:<seq>``              hash    an alert: ``id``, ``received``, ``payload`` (JSON), ``bytes``,
                                   ``open`` (deliveries pending or running), ``left`` (all its
                                   deliveries, dead ones too; the alert goes at 0)
``P:totals``               hash    ``alerts`` and ``bytes`` of the alerts with ``open > 0``
``P:d:<seq>:<handler>``    hash    a delivery: ``state`` (pending | running | dead),
                                   ``attempt``, ``due``, ``owner``, ``error``, ``failed``
``P:q:<handler>``          zset    pending deliveries, score ``seq``
``P:due:<handler>``        zset    pending deliveries, score ``due``
``P:run:<handler>``        zset    running deliveries, score the lease's end
``P:o:<owner>``            set     ``<seq>:<handler>`` of the deliveries ``owner`` holds
``P:owners``               set     owners holding deliveries
``P:dead``                 zset    dead letters ``<seq, 20 digits>:<handler>``, score ``failed``
``P:handlers``             set     handler names ever given to accept (for stats)
``P:ep``                   hash    identity -> its episode (JSON ``[status, startsAt, endsAt]``)
``P:touch``                zset    identity -> recency (evicted past ``webhook_dedup_size``)
=========================  ======  ============================================================

Times are stored as Python's ``repr`` of the float (exact, and what Redis parses for scores).
The client does not retry commands on its own (a claim sent twice would hold a delivery that
nobody handles); a broken connection is replaced when it is next taken from the pool.
"""

from __future__ import annotations

import json
import random
import re
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import redis
from redis.backoff import NoBackoff
from redis.client import Pipeline
from redis.commands.core import Script
from redis.exceptions import WatchError
from redis.retry import Retry
from redis.typing import EncodableT

from vigil.config import ExporterSettings
from vigil_exporter.store import (
    Accepted,
    Claim,
    DeadLetter,
    Episode,
    Incoming,
    StoreStats,
    is_redelivery,
    next_episode,
)

__all__ = ["SCHEMA_VERSION", "RedisStore"]

SCHEMA_VERSION = 1
_SOCKET_TIMEOUT = 15.0
_CONNECT_TIMEOUT = 5.0
_TEXT = ("utf-8", "surrogatepass")  # how strings are stored (a payload may hold lone surrogates)


# --- Lua ----------------------------------------------------------------------------------------
# Every script gets the key prefix P as ARGV[1]; the keys it names are declared in KEYS where
# they are known beforehand (the others are in the same hash-tag slot).

_PRELUDE = """
local P = ARGV[1]
local function dkey(seq, handler) return P .. ':d:' .. seq .. ':' .. handler end
-- The delivery a finishing call names (KEYS[1] ids, ARGV[2] alert id, ARGV[3] handler): its
-- seq, key and {state, owner}; nil when the alert id is unknown.
local function delivery()
  local seq = redis.call('HGET', KEYS[1], ARGV[2])
  if not seq then return nil end
  local dk = dkey(seq, ARGV[3])
  return seq, dk, redis.call('HMGET', dk, 'state', 'owner')
end
local function akey(seq) return P .. ':a:' .. seq end
local function split(ref)
  local at = string.find(ref, ':', 1, true)
  return string.sub(ref, 1, at - 1), string.sub(ref, at + 1)
end
local function unpad(member)
  local seq = string.gsub(string.sub(member, 1, 20), '^0+', '')
  return seq, string.sub(member, 22)
end
local function hold(seq, handler, owner, lease)
  redis.call('SADD', P .. ':o:' .. owner, seq .. ':' .. handler)
  redis.call('SADD', P .. ':owners', owner)
  redis.call('ZADD', P .. ':run:' .. handler, lease, seq)
end
local function unhold(seq, handler, owner)
  local okey = P .. ':o:' .. owner
  redis.call('SREM', okey, seq .. ':' .. handler)
  if redis.call('EXISTS', okey) == 0 then redis.call('SREM', P .. ':owners', owner) end
  redis.call('ZREM', P .. ':run:' .. handler, seq)
end
local function enqueue(seq, handler, due)
  redis.call('ZADD', P .. ':q:' .. handler, seq, seq)
  redis.call('ZADD', P .. ':due:' .. handler, due, seq)
end
local function unqueue(seq, handler)
  redis.call('ZREM', P .. ':q:' .. handler, seq)
  redis.call('ZREM', P .. ':due:' .. handler, seq)
end
local function close(seq)
  local key = akey(seq)
  if redis.call('HINCRBY', key, 'open', -1) == 0 then
    local totals = P .. ':totals'
    redis.call('HINCRBY', totals, 'alerts', -1)
    redis.call('HINCRBY', totals, 'bytes', 0 - tonumber(redis.call('HGET', key, 'bytes')))
  end
end
local function forget(seq)
  local key = akey(seq)
  local left = redis.call('HINCRBY', key, 'left', -1)
  if left <= 0 and tonumber(redis.call('HGET', key, 'open')) <= 0 then
    redis.call('HDEL', P .. ':ids', redis.call('HGET', key, 'id'))
    redis.call('DEL', key)
  end
end
"""

# KEYS: q, due, run of the handler. ARGV: P, handler, now, owner, lease end.
# The oldest (lowest seq) of: running with lease < now, pending with due <= now. For the pending
# ones it walks whichever is shorter: the due ones (by due time) or the queue (by seq) up to the
# first due one.
_CLAIM = _PRELUDE + """
local handler, now_s, owner, until_s = ARGV[2], ARGV[3], ARGV[4], ARGV[5]
local now = tonumber(now_s)
local best, pick = nil, nil
for _, m in ipairs(redis.call('ZRANGEBYSCORE', KEYS[3], '-inf', '(' .. now_s)) do
  local s = tonumber(m)
  if best == nil or s < best then best, pick = s, m end
end
local ready = redis.call('ZCOUNT', KEYS[2], '-inf', now_s)
if ready > 0 then
  if ready <= redis.call('ZCARD', KEYS[1]) - ready then
    for _, m in ipairs(redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', now_s)) do
      local s = tonumber(m)
      if best == nil or s < best then best, pick = s, m end
    end
  else
    local start, done = 0, false
    while not done do
      local batch = redis.call('ZRANGE', KEYS[1], start, start + 99)
      if #batch == 0 then break end
      for _, m in ipairs(batch) do
        local s = tonumber(m)
        if best ~= nil and s > best then done = true; break end
        if tonumber(redis.call('ZSCORE', KEYS[2], m)) <= now then
          best, pick, done = s, m, true
          break
        end
      end
      start = start + 100
    end
  end
end
if pick == nil then return false end
local dk = dkey(pick, handler)
local d = redis.call('HMGET', dk, 'state', 'owner', 'attempt')
if d[1] == 'running' then unhold(pick, handler, d[2]) else unqueue(pick, handler) end
redis.call('HSET', dk, 'state', 'running', 'owner', owner)
hold(pick, handler, owner, until_s)
local a = redis.call('HMGET', akey(pick), 'id', 'payload', 'received')
return {a[1], a[2], a[3], d[3]}
"""

# KEYS: ids. ARGV: P, alert id, handler.
_COMPLETE = _PRELUDE + """
local seq, dk, d = delivery()
if not seq then return 0 end
local handler = ARGV[3]
if not d[1] or d[1] == 'dead' then return 0 end
if d[1] == 'running' then unhold(seq, handler, d[2]) else unqueue(seq, handler) end
redis.call('DEL', dk)
close(seq)
forget(seq)
return 1
"""

# KEYS: ids. ARGV: P, alert id, handler, due, error.
_RETRY = _PRELUDE + """
local seq, dk, d = delivery()
if not seq then return 0 end
local handler = ARGV[3]
if d[1] ~= 'running' then return 0 end
unhold(seq, handler, d[2])
enqueue(seq, handler, ARGV[4])
redis.call('HSET', dk, 'state', 'pending', 'due', ARGV[4], 'error', ARGV[5])
redis.call('HDEL', dk, 'owner')
redis.call('HINCRBY', dk, 'attempt', 1)
return 1
"""

# KEYS: ids, dead. ARGV: P, alert id, handler, error, now, dead_letter_limit.
# Returns how many old dead letters were discarded.
_DEAD_LETTER = _PRELUDE + """
local seq, dk, d = delivery()
if not seq then return 0 end
local handler = ARGV[3]
if d[1] == 'running' then
  unhold(seq, handler, d[2])
  redis.call('HSET', dk, 'state', 'dead', 'error', ARGV[4], 'failed', ARGV[5])
  redis.call('HDEL', dk, 'owner')
  redis.call('ZADD', KEYS[2], ARGV[5], string.rep('0', 20 - #seq) .. seq .. ':' .. handler)
  close(seq)
end
local excess = redis.call('ZCARD', KEYS[2]) - tonumber(ARGV[6])
if excess <= 0 then return 0 end
local oldest = redis.call('ZRANGE', KEYS[2], 0, excess - 1)
for _, m in ipairs(oldest) do
  local s, h = unpad(m)
  redis.call('DEL', dkey(s, h))
  forget(s)
end
redis.call('ZREMRANGEBYRANK', KEYS[2], 0, excess - 1)
return #oldest
"""

# KEYS: the owner's set. ARGV: P, owner, lease end.
_RENEW = _PRELUDE + """
for i = 4, #ARGV, 2 do
  local seq = redis.call('HGET', KEYS[2], ARGV[i])
  local handler = ARGV[i + 1]
  if seq and redis.call('SISMEMBER', KEYS[1], seq .. ':' .. handler) == 1 then
    redis.call('ZADD', P .. ':run:' .. handler, 'XX', ARGV[3], seq)
  end
end
return 0
"""

# KEYS: the owner's set, owners. ARGV: P, owner. Returns how many deliveries were released.
_RELEASE = _PRELUDE + """
local refs = redis.call('SMEMBERS', KEYS[1])
for _, ref in ipairs(refs) do
  local seq, handler = split(ref)
  local dk = dkey(seq, handler)
  redis.call('ZREM', P .. ':run:' .. handler, seq)
  enqueue(seq, handler, redis.call('HGET', dk, 'due'))
  redis.call('HSET', dk, 'state', 'pending')
  redis.call('HDEL', dk, 'owner')
end
redis.call('DEL', KEYS[1])
redis.call('SREM', KEYS[2], ARGV[2])
return #refs
"""

# KEYS: totals, dead, handlers. ARGV: P.
# Returns {alerts, bytes, dead letters, handler, pending, running, handler, ...}.
_STATS = _PRELUDE + """
local t = redis.call('HMGET', KEYS[1], 'alerts', 'bytes')
local out = {tonumber(t[1]) or 0, tonumber(t[2]) or 0, redis.call('ZCARD', KEYS[2])}
for _, h in ipairs(redis.call('SMEMBERS', KEYS[3])) do
  out[#out + 1] = h
  out[#out + 1] = redis.call('ZCARD', P .. ':q:' .. h)
  out[#out + 1] = redis.call('ZCARD', P .. ':run:' .. h)
end
return out
"""

# KEYS: dead. ARGV: P, last rank (-1: all). Newest first, six fields per dead letter.
_DEAD_LETTERS = _PRELUDE + """
local out = {}
for _, m in ipairs(redis.call('ZREVRANGE', KEYS[1], 0, tonumber(ARGV[2]))) do
  local s, h = unpad(m)
  local d = redis.call('HMGET', dkey(s, h), 'attempt', 'error', 'failed')
  local a = redis.call('HMGET', akey(s), 'id', 'payload')
  out[#out + 1] = a[1]
  out[#out + 1] = h
  out[#out + 1] = d[1]
  out[#out + 1] = d[2] or ''
  out[#out + 1] = d[3]
  out[#out + 1] = a[2]
end
return out
"""

# KEYS: handlers. ARGV: P, limit (-1: all). The ids of the alerts with a pending or running
# delivery, newest (highest seq) first.
_OPEN_IDS = _PRELUDE + """
local limit = tonumber(ARGV[2])
local seen, seqs = {}, {}
for _, h in ipairs(redis.call('SMEMBERS', KEYS[1])) do
  local pending = redis.call('ZREVRANGE', P .. ':q:' .. h, 0, limit)
  for _, list in ipairs({pending, redis.call('ZRANGE', P .. ':run:' .. h, 0, -1)}) do
    for _, s in ipairs(list) do
      local n = tonumber(s)
      if not seen[n] then seen[n] = true; seqs[#seqs + 1] = n end
    end
  end
end
table.sort(seqs, function(a, b) return a > b end)
local out = {}
for i = 1, #seqs do
  if limit >= 0 and #out > limit then break end
  out[#out + 1] = redis.call('HGET', akey(seqs[i]), 'id')
end
return out
"""

# Inside accept's MULTI. KEYS: touch, ep. ARGV: cutoff. Forgets the identities touched at or
# before the cutoff.
_EVICT = """
local last = -(tonumber(ARGV[1]) + 1)
local gone = redis.call('ZRANGE', KEYS[1], 0, last)
for i = 1, #gone, 1000 do
  redis.call('HDEL', KEYS[2], unpack(gone, i, math.min(i + 999, #gone)))
end
redis.call('ZREMRANGEBYRANK', KEYS[1], 0, last)
return #gone
"""


# --- the store ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Plan:
    """What one accept decided from its snapshot (written only if nothing changed meanwhile)."""

    result: Accepted
    touches: dict[str, int]  # identity -> its new recency
    episodes: dict[EncodableT, EncodableT]  # identity -> its new episode, encoded
    fresh: list[tuple[Incoming, bytes]]  # the alerts to store, with their payload bytes
    first_seq: int  # the seq of fresh[0] (when storing)
    adding: int  # the bytes of the fresh payloads
    keep: int  # identities kept, the most recently touched (webhook_dedup_size)


@dataclass(frozen=True, slots=True)
class _Snapshot:
    """What one accept read before deciding (one MULTI/EXEC of reads)."""

    touched: int  # the highest recency handed out
    seq: int  # the last alert seq handed out
    count: int  # open alerts (P:totals)
    size: int  # their payload bytes
    known: dict[str, Episode | None]  # the batch's identities -> their episode (None: new)
    taken: frozenset[str]  # the batch's ids the store holds already


@dataclass(slots=True)
class _Decision:
    """What the batch is, alert by alert, against the snapshot (nothing read or written)."""

    touches: dict[str, int] = field(default_factory=dict)  # identity -> its new recency
    episodes: dict[EncodableT, EncodableT] = field(default_factory=dict)  # encoded
    fresh: list[tuple[Incoming, bytes]] = field(default_factory=list)  # with payload bytes
    duplicates: int = 0

    @property
    def adding(self) -> int:
        """The bytes of the fresh payloads."""
        return sum(len(body) for _, body in self.fresh)


def _parse_snapshot(identities: list[str], ids: list[str], replies: list[Any]) -> _Snapshot:
    """:meth:`RedisStore._snapshot`'s replies, in the order it asked."""
    top, seq, totals, *batch = replies
    episodes, stored = batch if batch else ([], [])
    count, size = (int(value or 0) for value in totals)
    return _Snapshot(touched=int(top[0][1]) if top else 0, seq=int(seq or 0), count=count,
                     size=size, known=_known_episodes(identities, episodes),
                     taken=_stored_ids(ids, stored))


def _known_episodes(identities: list[str], raws: list[Any]) -> dict[str, Episode | None]:
    """``P:ep``'s answers for ``identities``, decoded."""
    known: dict[str, Episode | None] = dict.fromkeys(identities)
    for name, raw in zip(identities, raws, strict=True):
        if raw is not None:
            known[name] = Episode(*json.loads(bytes(raw).decode(*_TEXT)))
    return known


def _stored_ids(ids: list[str], stored: list[Any]) -> frozenset[str]:
    """The ``ids`` that ``P:ids`` answered a seq for."""
    return frozenset(i for i, there in zip(ids, stored, strict=True) if there is not None)


def _decide(alerts: Sequence[Incoming], snapshot: _Snapshot) -> _Decision:
    """Each alert in turn: a redelivery (counted, its recency renewed) or fresh (its new
    episode and payload kept); a later alert of the batch sees an earlier one's episode."""
    known = dict(snapshot.known)
    touched = snapshot.touched
    decision = _Decision()
    for alert in alerts:
        touched += 1
        previous = known[alert.identity]
        decision.touches[alert.identity] = touched
        if is_redelivery(previous, alert.status, alert.starts_at):
            decision.duplicates += 1
            continue
        episode = next_episode(previous, alert.status, alert.starts_at, alert.ends_at)
        known[alert.identity] = episode
        decision.episodes[alert.identity] = json.dumps(
            [episode.status, episode.starts_at, episode.ends_at],
            ensure_ascii=False).encode(*_TEXT)
        decision.fresh.append((alert, alert.encoded().encode(*_TEXT)))
    return decision


def _check_unique(handlers: Sequence[str], decision: _Decision, snapshot: _Snapshot) -> None:
    """Raise ``ValueError`` where SQLite's UNIQUE constraints refuse (an error, nothing
    committed): a handler named twice, an alert id twice in the batch or already stored."""
    if len(set(handlers)) != len(handlers):
        raise ValueError(f"duplicate handler names: {list(handlers)!r}")
    fresh_ids = [alert.id for alert, _ in decision.fresh]
    if len(set(fresh_ids)) != len(fresh_ids) or snapshot.taken.intersection(fresh_ids):
        raise ValueError("alert ids must be unique in the store")


class RedisStore:
    """:class:`~vigil_exporter.store.AlertStore` in the Redis at ``url``, keys under
    ``{prefix}:``.

    Caps come from ``settings`` as for :class:`~vigil_exporter.store.sqlite.SQLiteStore`
    (``store_max_alerts``, ``store_max_bytes``, ``webhook_dedup_size``, ``dead_letter_limit``);
    all receivers sharing a prefix should use the same values. Opening connects (a wrong URL or
    password fails here) and checks the layout version.
    """

    def __init__(self, url: str, settings: ExporterSettings, *, prefix: str = "vigil") -> None:
        if not prefix:
            raise ValueError("prefix must not be empty")
        self.url = url
        self.prefix = prefix
        self._settings = settings
        self._p = "{" + prefix + "}"
        # Options given in the URL (e.g. ?socket_timeout=5) win over these defaults.
        self._redis = redis.Redis.from_url(
            url, decode_responses=False, encoding_errors="surrogatepass",
            socket_timeout=_SOCKET_TIMEOUT, socket_connect_timeout=_CONNECT_TIMEOUT,
            retry=Retry(NoBackoff(), 0))
        try:
            self._check_schema()
        except BaseException:
            self._redis.close()
            raise
        register = self._redis.register_script
        self._claim, self._complete, self._retry = (
            register(_CLAIM), register(_COMPLETE), register(_RETRY))
        self._dead_letter, self._renew, self._release = (
            register(_DEAD_LETTER), register(_RENEW), register(_RELEASE))
        self._stats, self._dead_letters = register(_STATS), register(_DEAD_LETTERS)
        self._open_ids = register(_OPEN_IDS)

    def __repr__(self) -> str:
        return f"RedisStore({_masked(self.url)!r}, prefix={self.prefix!r})"

    def _key(self, *parts: str) -> str:
        return ":".join((self._p, *parts))

    def _check_schema(self) -> None:
        key = self._key("schema")
        self._redis.set(key, SCHEMA_VERSION, nx=True)
        version = self._redis.get(key)
        if version != str(SCHEMA_VERSION).encode():
            shown = version.decode(*_TEXT) if isinstance(version, bytes) else version
            raise RuntimeError(f"{self!r}: store layout version {shown}; this vigil knows "
                               f"version {SCHEMA_VERSION}")

    def _run(self, script: Script, keys: Sequence[str], *args: str | int | bytes) -> Any:
        return script(keys=list(keys), args=[self._p, *args])

    # -- the webhook's side ----------------------------------------------------------------

    def accept(self, alerts: Sequence[Incoming], handlers: Sequence[str],
               now: float) -> Accepted:
        watched = (self._key("touch"), self._key("seq"))  # not totals: see the module doc
        conflicts = 0
        with self._redis.pipeline(transaction=True) as pipe:
            while True:
                try:
                    pipe.watch(*watched)  # type: ignore[no-untyped-call]  # untyped in redis-py
                    plan = self._plan(alerts, handlers)
                    if not plan.result.accepted:
                        return plan.result  # nothing written: the snapshot was its view
                    pipe.multi()
                    self._write(pipe, plan, handlers, float(now))
                    pipe.execute()
                    return plan.result
                except WatchError:  # another process committed in between: decide again
                    conflicts += 1
                    if conflicts > 3:
                        time.sleep(random.uniform(0, min(0.05, 0.001 * 2 ** conflicts)))

    def _plan(self, alerts: Sequence[Incoming], handlers: Sequence[str]) -> _Plan:
        """Read what accept needs in one snapshot and decide, as SQLiteStore does."""
        snapshot = self._snapshot(alerts)
        decision = _decide(alerts, snapshot)
        if decision.fresh and handlers:
            if self._over_caps(snapshot, decision):
                return _Plan(Accepted("full"), {}, {}, [], 0, 0, 0)
            _check_unique(handlers, decision, snapshot)
        result = Accepted("accepted", len(decision.fresh), decision.duplicates,
                          tuple(alert.id for alert, _ in decision.fresh))
        return _Plan(result, decision.touches, decision.episodes, decision.fresh,
                     snapshot.seq + 1, decision.adding, self._settings.webhook_dedup_size)

    def _snapshot(self, alerts: Sequence[Incoming]) -> _Snapshot:
        """One MULTI/EXEC of reads: the recency and seq counters, the open totals, the known
        episodes of the batch's identities and which of its ids the store holds."""
        identities = list(dict.fromkeys(alert.identity for alert in alerts))
        ids = [alert.id for alert in alerts]
        with self._redis.pipeline(transaction=True) as snap:
            snap.zrange(self._key("touch"), -1, -1, withscores=True)
            snap.get(self._key("seq"))
            snap.hmget(self._key("totals"), ["alerts", "bytes"])
            if identities:  # an alert has an identity: none means no alerts, and no ids
                snap.hmget(self._key("ep"), identities)
                snap.hmget(self._key("ids"), ids)
            replies = snap.execute()
        return _parse_snapshot(identities, ids, replies)

    def _over_caps(self, snapshot: _Snapshot, decision: _Decision) -> bool:
        """Whether storing the fresh alerts would take the open ones past a cap (an empty
        store takes any batch, as SQLite does)."""
        settings = self._settings
        return bool(snapshot.count) and (
            snapshot.count + len(decision.fresh) > settings.store_max_alerts
            or snapshot.size + decision.adding > settings.store_max_bytes)

    def _write(self, pipe: Pipeline, plan: _Plan, handlers: Sequence[str], now: float) -> None:
        """Queue the plan's writes in ``pipe``'s MULTI."""
        touch, ep = self._key("touch"), self._key("ep")
        if plan.touches:
            pipe.zadd(touch, dict(plan.touches))
        if plan.episodes:
            pipe.hset(ep, mapping=plan.episodes)
        if plan.fresh and handlers:
            self._write_fresh(pipe, plan, handlers, now)
        pipe.eval(_EVICT, 2, touch, ep, plan.keep)

    def _write_fresh(self, pipe: Pipeline, plan: _Plan, handlers: Sequence[str],
                     now: float) -> None:
        """Queue the fresh alerts' writes: each alert, its deliveries, the queues, the
        counters."""
        received = repr(now)
        seqs = [str(plan.first_seq + i) for i in range(len(plan.fresh))]
        for seq, (alert, body) in zip(seqs, plan.fresh, strict=True):
            pipe.hset(self._key("a", seq), mapping={
                "id": alert.id, "received": received, "payload": body,
                "bytes": len(body), "open": len(handlers), "left": len(handlers)})
            for handler in handlers:
                pipe.hset(self._key("d", seq, handler), mapping={
                    "state": "pending", "attempt": 1, "due": received})
        pipe.hset(self._key("ids"), mapping={
            alert.id: seq for seq, (alert, _) in zip(seqs, plan.fresh, strict=True)})
        for handler in handlers:
            pipe.zadd(self._key("q", handler), {seq: int(seq) for seq in seqs})
            pipe.zadd(self._key("due", handler), dict.fromkeys(seqs, now))
        pipe.set(self._key("seq"), seqs[-1])
        pipe.hincrby(self._key("totals"), "alerts", len(plan.fresh))
        pipe.hincrby(self._key("totals"), "bytes", plan.adding)
        pipe.sadd(self._key("handlers"), *handlers)

    # -- the delivery loop's side ----------------------------------------------------------

    def claim(self, handler: str, owner: str, now: float, lease: float) -> Claim | None:
        until = now + lease
        row = self._run(self._claim, [self._key("q", handler), self._key("due", handler),
                                      self._key("run", handler)],
                        handler, _num(now), owner, _num(until))
        if row is None:
            return None
        alert_id, payload, received, attempt = row
        return Claim(_text(alert_id), handler, int(attempt), _json(payload), float(received),
                     owner)

    def complete(self, claim: Claim) -> None:
        self._run(self._complete, [self._key("ids")], claim.alert_id, claim.handler)

    def retry(self, claim: Claim, error: str, due: float) -> None:
        self._run(self._retry, [self._key("ids")], claim.alert_id, claim.handler, _num(due),
                  error)

    def dead_letter(self, claim: Claim, error: str, now: float) -> int:
        return int(self._run(self._dead_letter, [self._key("ids"), self._key("dead")],
                             claim.alert_id, claim.handler, error, _num(now),
                             self._settings.dead_letter_limit))

    def renew(self, owner: str, until: float, held: Sequence[tuple[str, str]]) -> None:
        if not held:
            return
        pairs = [part for alert_id, handler in held for part in (alert_id, handler)]
        self._run(self._renew, [self._key("o", owner), self._key("ids")], owner, _num(until),
                  *pairs)

    def release(self, owner: str) -> int:
        return int(self._run(self._release, [self._key("o", owner), self._key("owners")],
                             owner))

    def owners(self) -> set[str]:
        members: set[bytes | str] = self._redis.smembers(self._key("owners"))
        return {_text(member) for member in members}

    # -- reading -----------------------------------------------------------------------------

    def stats(self) -> StoreStats:
        reply = self._run(self._stats, [self._key("totals"), self._key("dead"),
                                        self._key("handlers")])
        pending: dict[str, int] = {}
        running: dict[str, int] = {}
        for i in range(3, len(reply), 3):
            handler = _text(reply[i])
            if reply[i + 1]:
                pending[handler] = int(reply[i + 1])
            if reply[i + 2]:
                running[handler] = int(reply[i + 2])
        return StoreStats(int(reply[0]), int(reply[1]), int(reply[2]), pending, running)

    def dead_letters(self, limit: int) -> list[DeadLetter]:
        if limit == 0:
            return []
        reply = self._run(self._dead_letters, [self._key("dead")],
                          limit - 1 if limit > 0 else -1)  # a negative LIMIT: all, as SQLite
        return [DeadLetter(_text(reply[i]), _text(reply[i + 1]), int(reply[i + 2]),
                           _text(reply[i + 3]), float(reply[i + 4]), _json(reply[i + 5]))
                for i in range(0, len(reply), 6)]

    def open_alert_ids(self, limit: int) -> list[str]:
        if limit == 0:
            return []
        reply = self._run(self._open_ids, [self._key("handlers")],
                          limit - 1 if limit > 0 else -1)  # the last rank, as dead_letters
        return [_text(alert_id) for alert_id in reply]

    def close(self) -> None:
        self._redis.close()


# --- helpers ----------------------------------------------------------------------------------


def _num(value: float) -> str:
    """A time as stored: exact (``repr``), and what Redis parses for a score."""
    return repr(float(value))


def _text(value: Any) -> str:
    return bytes(value).decode(*_TEXT)


def _json(value: Any) -> dict[str, Any]:
    decoded: dict[str, Any] = json.loads(_text(value))
    return decoded


_QUERY_SECRET = re.compile(r"(?i)((?:^|[?&;])password=)[^&;#]*")
_MASK = r"\1***"


def _masked(url: str) -> str:
    """``url`` without its credentials (``user:password@`` and a ``password=`` option)."""
    scheme, sep, rest = url.partition("://")
    if not sep:
        return _QUERY_SECRET.sub(_MASK, url)
    authority, slash, path = rest.partition("/")
    if "@" in authority:
        authority = "***@" + authority.rsplit("@", 1)[1]
    if "?" in authority:  # redis://host?password=...: options without a path
        head, _, query = authority.partition("?")
        authority = head + "?" + _QUERY_SECRET.sub(_MASK, query)
    return f"{scheme}://{authority}{slash}{_QUERY_SECRET.sub(_MASK, path)}"
