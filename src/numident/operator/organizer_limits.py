"""Per-organizer limits on identification: items per second and items per UTC day.

Each organizer may have its own ``rate_limit`` and ``daily_quota`` (columns of ``organizers``);
where it has none, the gateway's defaults (``[operator.limits]``) apply; with neither, there is
no limit. Batch items count one by one. A request that does not fit is refused whole with 429
and ``Retry-After`` (``TOO_MANY_REQUESTS`` for the rate, ``QUOTA_EXCEEDED`` for the quota, as in
CAMARA Commonalities), so a refused batch has left nothing behind and may be sent again as is.

Where each limit holds:

- the daily quota is counted in the database (``organizer_daily_items``) by one conditional
  upsert, so it holds across every replica on one database. The upsert is the last statement of
  the transaction that answers the items: they are counted if and only if they are answered,
  with one commit, and the row lock that serialises an organizer's replicas is held only for
  that commit. A cheap read refuses a request that cannot fit before any work is done;
- the per-second rate is a token bucket in each replica's memory (:mod:`numident.core.rate`),
  so N replicas admit up to N times the rate. Sharing it would put a database write on every
  request of every organizer, a second serialisation point on SQLite; the quota already bounds
  what one organizer can take in total, and the rate only smooths its bursts.

Limits are read from the database and kept for at most a second, so a change (admin API or
``set-limits``) applies on every replica within a second, and at once on the replica that made
it; a database read per request would cost a few percent of single-request throughput. Items
are counted only while a quota applies (counting them always would add a write per request).
Every refusal counts in ``numident_limited_items_total``; the audit trail gets at most one
``limit_exceeded`` entry per organizer and limit per ``audit_interval_seconds`` (per replica),
so a refused flood cannot flood the audit. Each entry's ``refused`` is the number of items
refused since the previous entry of that organizer and limit, this request's included, and the
count of the last window is written when the gateway stops (:meth:`OrganizerLimits.flush`), so
that the entries add up to every refused item (the SLA report's ``refused``). The deferred
mode's refusals for want of capacity are counted the same way, as the limit ``capacity``.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta

from sqlalchemy import Connection, Engine, Insert, bindparam, select

from numident.config import LimitSettings
from numident.core.clock import Clock
from numident.core.rate import TokenBucket
from numident.errors import TooManyRequests
from numident.operator import audit
from numident.operator.identification import Organizer
from numident.operator.metrics import GatewayMetrics
from numident.operator.organizers import Limits
from numident.operator.tables import organizer_daily_items as daily
from numident.operator.tables import organizers
from numident.storage.database import read_only
from numident.storage.dialect import conflict_insert, per_dialect

RATE = "rate_limit"
QUOTA = "daily_quota"
CAPACITY = "capacity"
FRESH_FOR = timedelta(seconds=1)


@dataclass
class Admission:
    """Items admitted by the rate; ``charge`` counts them against the day's quota inside the
    transaction that answers them, so they are counted exactly when they are answered."""

    limits: OrganizerLimits
    organizer: Organizer
    items: int
    quota: int | None
    day: date
    refused: bool = False

    def charge(self, conn: Connection) -> None:
        """Count the items in ``conn``'s transaction, or raise TooManyRequests to roll it
        back (call :meth:`OrganizerLimits.settle` after the transaction either way)."""
        if self.quota is None:
            return
        if not _charge(conn, self.organizer.id, self.day, self.items, self.quota):
            self.refused = True
            raise self.limits.quota_exceeded(self.organizer, self.quota, self.day)


@per_dialect
def _charge_statement(conn: Connection) -> Insert:
    insert = conflict_insert(conn, daily)
    statement: Insert = insert.on_conflict_do_update(
        index_elements=[daily.c.organizer_id, daily.c.day],
        set_={"item_count": daily.c.item_count + insert.excluded.item_count},
        where=daily.c.item_count + insert.excluded.item_count <= bindparam("quota"),
    ).returning(daily.c.item_count)
    return statement


def _charge(conn: Connection, organizer_id: int, day: date, items: int, quota: int) -> bool:
    """Add ``items`` to the day's count unless that passes ``quota``, in one statement.

    The conflict clause updates only when the sum fits; concurrent replicas serialise on the
    row, so the count never passes the quota.
    """
    if items > quota:
        return False
    return conn.execute(_charge_statement(conn), {
        "organizer_id": organizer_id, "day": day, "item_count": items,
        "quota": quota}).first() is not None


class OrganizerLimits:
    """Admits an organizer's items or refuses them with 429; see the module docstring."""

    def __init__(self, engine: Engine, clock: Clock, settings: LimitSettings,
                 metrics: GatewayMetrics) -> None:
        self._engine = engine
        self._clock = clock
        self._settings = settings
        self._metrics = metrics
        self._lock = threading.Lock()
        self._buckets: dict[int, TokenBucket] = {}
        self._audited: dict[tuple[int, str], datetime] = {}
        self._unwritten: dict[tuple[int, str], tuple[Organizer, int | None, int]] = {}
        self._known: dict[int, tuple[datetime, Limits]] = {}
        # Bucket times are seconds since this moment: an epoch timestamp (1.8e9) as a float
        # keeps only microseconds, and the lost fractions would make refills fall short.
        self._epoch = clock.now()

    def effective(self, organizer_id: int) -> Limits:
        """The limits that apply to the organizer: its own, else the gateway's (as read from
        the database at most FRESH_FOR ago)."""
        now = self._clock.now()
        with self._lock:
            known = self._known.get(organizer_id)
        if known is not None and timedelta(0) <= now - known[0] < FRESH_FOR:
            return known[1]
        with read_only(self._engine) as conn:
            row = conn.execute(select(organizers.c.rate_limit, organizers.c.daily_quota)
                               .where(organizers.c.id == organizer_id)).first()
        own = Limits(row.rate_limit, row.daily_quota) if row is not None else Limits()
        limits = Limits(own.rate_limit or self._settings.rate_limit,
                        own.daily_quota or self._settings.daily_quota)
        with self._lock:
            self._known[organizer_id] = (now, limits)
        return limits

    def forget(self, organizer_id: int) -> None:
        """Read the organizer's limits afresh at its next request (they were just changed)."""
        with self._lock:
            self._known.pop(organizer_id, None)

    def admit(self, organizer: Organizer, items: int) -> Admission:
        """Admit ``items`` by the rate and a first look at the quota, or raise TooManyRequests
        (counted and audited); the quota itself is taken by :meth:`Admission.charge`."""
        now = self._clock.now()
        limits = self.effective(organizer.id)
        if limits.rate_limit is not None:
            wait = self._take(organizer.id, limits.rate_limit, items, now)
            if wait:
                self.refused(organizer, RATE, limits.rate_limit, items, now)
                raise TooManyRequests(
                    f"more than {limits.rate_limit} identification items per second",
                    retry_after=math.ceil(wait), code="TOO_MANY_REQUESTS")
        admission = Admission(self, organizer, items, limits.daily_quota, now.date())
        if limits.daily_quota is not None and \
                self.counted(organizer.id, admission.day) + items > limits.daily_quota:
            admission.refused = True
            self.settle(admission)
            raise self.quota_exceeded(organizer, limits.daily_quota, admission.day)
        return admission

    def settle(self, admission: Admission) -> None:
        """Count and audit a refusal by the quota, outside the transaction it rolled back."""
        if admission.refused and admission.quota is not None:
            self.refused(admission.organizer, QUOTA, admission.quota, admission.items,
                         self._clock.now())

    def quota_exceeded(self, organizer: Organizer, quota: int, day: date) -> TooManyRequests:
        now = self._clock.now()
        midnight = datetime.combine(day + timedelta(days=1), time(), tzinfo=now.tzinfo)
        left = max(0, quota - self.counted(organizer.id, day))
        return TooManyRequests(
            f"the daily quota of {quota} identification items would be exceeded ({left} left "
            "today, UTC)", retry_after=math.ceil((midnight - now).total_seconds()),
            code="QUOTA_EXCEEDED")

    def _take(self, organizer_id: int, rate: int, items: int, now: datetime) -> float:
        seconds = (now - self._epoch).total_seconds()
        with self._lock:
            bucket = self._buckets.get(organizer_id)
            if bucket is None or bucket.rate != rate:
                bucket = self._buckets[organizer_id] = TokenBucket.full(rate, seconds)
            return bucket.take(items, seconds)

    def counted(self, organizer_id: int, day: date) -> int:
        """Items counted against the organizer's quota on ``day`` (UTC)."""
        with read_only(self._engine) as conn:
            used = conn.execute(select(daily.c.item_count).where(
                daily.c.organizer_id == organizer_id, daily.c.day == day)).scalar()
        return int(used or 0)

    def refused(self, organizer: Organizer, limit: str, value: int | None, items: int,
                now: datetime) -> None:
        """Count ``items`` refused by ``limit`` (``value``) in the metric and the audit trail."""
        if limit != CAPACITY:  # counted in numident_requests_refused_total
            self._metrics.limited.labels(organizer=organizer.name, limit=limit).inc(items)
        key = (organizer.id, limit)
        interval = timedelta(seconds=self._settings.audit_interval_seconds)
        with self._lock:
            _, _, earlier = self._unwritten.pop(key, (organizer, value, 0))
            last = self._audited.get(key)
            if last is not None and now - last < interval:
                self._unwritten[key] = (organizer, value, earlier + items)
                return
            self._audited[key] = now
        detail = {"limit": limit, "value": value, "items": items, "refused": earlier + items}
        with self._engine.begin() as conn:
            audit.write(conn, [audit.entry(now, organizer.name, "limit_exceeded",
                                           detail=_without_none(detail))])

    def flush(self) -> None:
        """Write the refusals counted since each key's last entry (the gateway stops)."""
        now = self._clock.now()
        with self._lock:
            unwritten, self._unwritten = self._unwritten, {}
        if not unwritten:
            return
        with self._engine.begin() as conn:
            audit.write(conn, [
                audit.entry(now, organizer.name, "limit_exceeded", detail=_without_none(
                    {"limit": limit, "value": value, "refused": count}))
                for (_, limit), (organizer, value, count) in sorted(unwritten.items())])


def _without_none(detail: Mapping[str, object]) -> dict[str, object]:
    return {k: v for k, v in detail.items() if v is not None}
