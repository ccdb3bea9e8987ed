"""The test assets the CAMARA features ask for: lines in each situation, as one billing export.

Every line is a row of the export the gateway imports at start, some with holder attributes
(KYC Match) and contract types (Tenure); what happened to a line later (a SIM swap, the number
passing to another holder) is a lifecycle event sent through the admin API with its
``occurredAt``. Times are relative to the start of the session (:attr:`Assets.now`), so a line
"swapped 23 hours ago" is swapped 23 hours before the scenarios run.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta

NOT_APPLICABLE_PREFIX = "+7958"
SIM_SWAP_MONITORED_DAYS = 90
"""The gateway is configured with a 90-day SIM swap history window, so that the scenarios of
an operator whose local rules limit the history run as well as the others."""

HOLDER = {
    "idDocument": "66666666q", "idDocumentType": "passport", "idDocumentExpiryDate": "2030-07-12",
    "bankAccountNumber": "IBAN:ES9121000418450200051332", "name": "Federica Sanchez Arjona",
    "givenName": "Federica", "familyName": "Sanchez Arjona", "nameKanaHankaku": "federica",
    "nameKanaZenkaku": "Ｆｅｄｅｒｉｃａ", "middleNames": "Lucia", "familyNameAtBirth": "Arjona",
    "address": "Calle Nicolas Salmeron 4, Madrid", "streetName": "Nicolas Salmeron",
    "streetNumber": "4", "postalCode": "28017", "region": "Comunidad de Madrid",
    "locality": "Madrid", "country": "ES", "houseNumberExtension": "2B",
    "birthdate": "1978-08-22", "email": "federica.sanchez@example.com", "gender": "FEMALE",
    "cityOfBirth": "Toledo", "countryOfBirth": "ES", "nationality": "ES"}
"""The holder attributes of the KYC line, by KYC Match request property."""

OTHER_PERSON = {
    "idDocument": "12345678z", "idDocumentType": "driver_licence",
    "idDocumentExpiryDate": "2031-01-01", "bankAccountNumber": "IBAN:FR7630006000011234567890189",
    "name": "Juan Perez Garcia", "givenName": "Juan", "familyName": "Perez Garcia",
    "nameKanaHankaku": "juan", "nameKanaZenkaku": "Ｊｕａｎ", "middleNames": "Antonio",
    "familyNameAtBirth": "Lopez", "address": "Avenida Diagonal 10, Barcelona",
    "streetName": "Avenida Diagonal", "streetNumber": "10", "postalCode": "08001",
    "region": "Catalonia", "locality": "Barcelona", "country": "FR",
    "houseNumberExtension": "7A", "birthdate": "1990-01-01", "email": "juan.perez@example.org",
    "gender": "MALE", "cityOfBirth": "Sevilla", "countryOfBirth": "FR", "nationality": "FR"}
"""Valid values of every attribute that match nothing stored for the KYC line."""


def snake(name: str) -> str:
    """The export column of a KYC Match property (``givenName`` -> ``given_name``)."""
    return "".join(f"_{c.lower()}" if c.isupper() else c for c in name)


@dataclass(frozen=True)
class Line:
    number: str
    contract_id: str
    activated_at: datetime | None
    contract_type: str = ""
    holder: dict[str, str] = field(default_factory=dict)
    swapped_hours_ago: int | None = None
    next_holder_from: datetime | None = None
    """When the number passed to another holder (a ``number_reassigned`` event), if it did."""


@dataclass
class Assets:
    """Every line the scenarios use, named by the situation it is in."""

    now: datetime = field(default_factory=lambda: datetime.now(UTC).replace(microsecond=0))

    def __post_init__(self) -> None:
        old = datetime(2015, 3, 1, tzinfo=UTC)
        self.long_held = Line("+79160000001", "C-LONG", old, "PAYM", HOLDER)
        """In use by one user since 2015: not recycled, long tenure, the KYC holder."""
        self.recycled = Line("+79160000002", "C-A", datetime(2016, 5, 10, tzinfo=UTC),
                             "PAYM", next_holder_from=datetime(2023, 2, 1, tzinfo=UTC))
        """User A from 2016-05-10, user B (contract C-B) from 2023-02-01."""
        self.new_holder = Line("+79160000003", "C-NEW", datetime(2024, 6, 1, tzinfo=UTC),
                               "PAYG")
        self.never_swapped = Line("+79160000004", "C-FRESH", self.now - timedelta(days=30))
        """SIM activated 30 days ago (inside the monitored window), never swapped."""
        self.no_sim = Line("+79160000005", "C-NOSIM", None)
        """No SIM activation is known for this line."""
        self.not_applicable = Line(NOT_APPLICABLE_PREFIX + "0000001", "C-MVNO", old)
        self.subscribed = Line("+79160000020", "C-SUB", old)
        """The line of the SIM swap subscriptions (its swaps are performed by scenarios)."""
        self.unsubscribed = Line("+79160000021", "C-UNSUB", old)
        """A line no subscription is ever created for."""
        self.unknown = "+79169999999"
        """A valid number that is no line of the operator."""
        self.swapped = {hours: Line(f"+791600001{i:02d}", f"C-SW{hours}", old,
                                    swapped_hours_ago=hours)
                        for i, hours in enumerate((11, 23, 48, 119, 239, 259, 300,
                                                   SIM_SWAP_MONITORED_DAYS * 24 + 2400))}
        """Lines whose SIM was swapped that many hours ago (the last one before the window)."""

    @property
    def lines(self) -> list[Line]:
        return [self.long_held, self.recycled, self.new_holder, self.never_swapped,
                self.no_sim, self.not_applicable, self.subscribed, self.unsubscribed,
                *self.swapped.values()]

    def swap_time(self, line: Line) -> datetime:
        assert line.swapped_hours_ago is not None, f"{line.number} was never swapped"
        return self.now - timedelta(hours=line.swapped_hours_ago)

    def swapped_within(self, hours: int) -> Line:
        """A line swapped less than ``hours`` ago (the latest swap before that bound)."""
        earlier = [h for h in self.swapped if h < hours]
        assert earlier, f"no asset line was swapped within {hours} hours"
        return self.swapped[max(earlier)]

    def swapped_before(self, hours: int) -> Line:
        """A line swapped more than ``hours`` ago but inside the monitored window."""
        window = SIM_SWAP_MONITORED_DAYS * 24
        later = [h for h in self.swapped if hours < h < window]
        assert later, f"no asset line was swapped more than {hours} hours ago"
        return self.swapped[min(later)]

    @property
    def past_date(self) -> date:
        """A day between the long-held line's start and the new holder's."""
        return date(2019, 6, 1)

    def export(self) -> str:
        """The billing export (CSV) of every line, with the optional columns."""
        columns = ["phone_number", "contract_id", "status", "activated_at", "contract_type",
                   *(snake(name) for name in HOLDER)]
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(columns)
        for line in self.lines:
            writer.writerow([line.number, line.contract_id, "active",
                             line.activated_at.isoformat() if line.activated_at else "",
                             line.contract_type,
                             *(line.holder.get(name, "") for name in HOLDER)])
        return out.getvalue()

    def events(self) -> list[dict[str, str]]:
        """The lifecycle events that happened to the lines after the export's rows."""
        swaps = [{"type": "sim_swapped", "phoneNumber": line.number,
                  "occurredAt": self.swap_time(line).isoformat()}
                 for line in self.swapped.values()]
        assert self.recycled.next_holder_from is not None
        return [*swaps, {"type": "number_reassigned", "phoneNumber": self.recycled.number,
                         "newContractId": "C-B",
                         "occurredAt": self.recycled.next_holder_from.isoformat()}]
