"""Per-organizer limits on identification: items per second and items per UTC day.

Each organizer may have its own ``rate_limit`` and ``daily_quota`` (columns of ``organizers``);
where it has none, the gateway's defaults (``[operator.limits]``) apply; with neither, there is
no limit. Batch items count one by one. A request that does not fit is refused whole with 429
and ``Retry-After`` (``TOO_MANY_REQUESTS`` for the rate, ``QUOTA_EXCEEDED`` for the quota, as in
CAMARA Commonalities), so a refused batch has left nothing behind and may be sent again as is.

Where each limit holds:

- the daily quota is counted in the database (``organizer_daily_items``) by one conditional
  upsert, so it holds across every replica on one database; items are charged before they are
  answered and given back if the request then fails;
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
so a refused flood cannot flood the audit.
"""

from __future__ import annotations

import math
import threading
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta

from sqlalchemy import Engine, Insert, bindparam, select, update
from sqlalchemy.dialects import postgresql, sqlite

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

RATE = "rate_limit"
QUOTA = "daily_quota"
FRESH_FOR = timedelta(seconds=1)


@dataclass(frozen=True)
class Charge:
    """Items charged to an organizer's day, to give back if their request fails."""

    organizer_id: int
    day: date
    items: int


_CHARGES: dict[str, Insert] = {}


def _charge_statement(dialect_name: str) -> Insert:
    # Built once per dialect: building it per request cost more than running it.
    statement = _CHARGES.get(dialect_name)
    if statement is None:
        dialect = postgresql if dialect_name == "postgresql" else sqlite
        insert = dialect.insert(daily)
        statement = insert.on_conflict_do_update(
            index_elements=[daily.c.organizer_id, daily.c.day],
            set_={"item_count": daily.c.item_count + insert.excluded.item_count},
            where=daily.c.item_count + insert.excluded.item_count <= bindparam("quota"),
        ).returning(daily.c.item_count)
        _CHARGES[dialect_name] = statement
    return statement


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

    def admit(self, organizer: Organizer, items: int) -> Charge:
        """Admit ``items`` for the organizer, or raise TooManyRequests (and count, audit it)."""
        now = self._clock.now()
        limits = self.effective(organizer.id)
        if limits.rate_limit is not None:
            wait = self._take(organizer.id, limits.rate_limit, items, now)
            if wait:
                self._refused(organizer, RATE, limits.rate_limit, items, now)
                raise TooManyRequests(
                    f"more than {limits.rate_limit} identification items per second",
                    retry_after=math.ceil(wait), code="TOO_MANY_REQUESTS")
        day = now.date()
        if limits.daily_quota is None:
            return Charge(organizer.id, day, 0)
        if not self._charge(organizer.id, day, items, limits.daily_quota):
            self._refused(organizer, QUOTA, limits.daily_quota, items, now)
            midnight = datetime.combine(day + timedelta(days=1), time(), tzinfo=now.tzinfo)
            raise TooManyRequests(
                f"the daily quota of {limits.daily_quota} identification items would be "
                f"exceeded ({self._remaining(organizer.id, day, limits.daily_quota)} left "
                "today, UTC)",
                retry_after=math.ceil((midnight - now).total_seconds()), code="QUOTA_EXCEEDED")
        return Charge(organizer.id, day, items)

    def refund(self, charge: Charge) -> None:
        """Give back the items of a request that failed after it was admitted."""
        if not charge.items:
            return
        with self._engine.begin() as conn:
            conn.execute(update(daily).where(daily.c.organizer_id == charge.organizer_id,
                                             daily.c.day == charge.day)
                         .values(item_count=daily.c.item_count - charge.items))

    def _take(self, organizer_id: int, rate: int, items: int, now: datetime) -> float:
        seconds = (now - self._epoch).total_seconds()
        with self._lock:
            bucket = self._buckets.get(organizer_id)
            if bucket is None or bucket.rate != rate:
                bucket = self._buckets[organizer_id] = TokenBucket.full(rate, seconds)
            return bucket.take(items, seconds)

    def _charge(self, organizer_id: int, day: date, items: int, quota: int) -> bool:
        """Add ``items`` to the day's count unless that passes ``quota``, in one statement.

        The conflict clause updates only when the sum fits; concurrent replicas serialise on
        the row, so the count never passes the quota.
        """
        if items > quota:
            return False
        with self._engine.begin() as conn:
            row = conn.execute(_charge_statement(conn.dialect.name), {
                "organizer_id": organizer_id, "day": day, "item_count": items,
                "quota": quota}).first()
        return row is not None

    def counted(self, organizer_id: int, day: date) -> int:
        """Items counted against the organizer's quota on ``day`` (UTC)."""
        with read_only(self._engine) as conn:
            used = conn.execute(select(daily.c.item_count).where(
                daily.c.organizer_id == organizer_id, daily.c.day == day)).scalar()
        return int(used or 0)

    def _remaining(self, organizer_id: int, day: date, quota: int) -> int:
        return max(0, quota - self.counted(organizer_id, day))

    def _refused(self, organizer: Organizer, limit: str, value: int, items: int,
                 now: datetime) -> None:
        self._metrics.limited.labels(organizer=organizer.name, limit=limit).inc(items)
        key = (organizer.id, limit)
        interval = timedelta(seconds=self._settings.audit_interval_seconds)
        with self._lock:
            last = self._audited.get(key)
            if last is not None and now - last < interval:
                return
            self._audited[key] = now
        with self._engine.begin() as conn:
            audit.write(conn, [audit.entry(now, organizer.name, "limit_exceeded",
                                           detail={"limit": limit, "value": value,
                                                   "items": items})])
