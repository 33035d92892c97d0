"""Periodic: validation at construction, tick arithmetic, DST rules, catch-up plans."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

import strego
from strego.periodic.definition import Definition
from strego.periodic.plan import plan


def day_ticks(cron: str, tz: str, on: date) -> list[datetime]:
    zone = ZoneInfo(tz)
    nxt = on + timedelta(days=1)
    start = datetime(on.year, on.month, on.day, tzinfo=zone)
    end = datetime(nxt.year, nxt.month, nxt.day, tzinfo=zone)
    return strego.Periodic("t", cron=cron, tz=tz).ticks(start, end)


def local(ticks: list[datetime]) -> list[str]:
    return [t.strftime("%H:%M%z") for t in ticks]


# (zone, spring-forward day, fall-back day)
DST_DAYS = [
    ("America/New_York", date(2024, 3, 10), date(2024, 11, 3)),
    ("Europe/Berlin", date(2024, 3, 31), date(2024, 10, 27)),
]


@pytest.mark.parametrize(("tz", "spring", "fall"), DST_DAYS)
def test_hourly_fires_23_then_25_times(tz: str, spring: date, fall: date) -> None:
    """`0 * * * *` fires on every real hour: 23 on the spring day, 25 on the fall day."""
    assert len(day_ticks("0 * * * *", tz, spring)) == 23
    assert len(day_ticks("0 * * * *", tz, fall)) == 25
    plain = day_ticks("0 * * * *", tz, spring + timedelta(days=7))
    assert len(plain) == 24


@pytest.mark.parametrize(("tz", "spring", "fall"), DST_DAYS)
def test_daily_in_the_shifted_hour_fires_once(tz: str, spring: date, fall: date) -> None:
    """`30 2 * * *`: the missing 02:30 fires once at 03:00; a repeated one fires once."""
    assert [t.strftime("%H:%M") for t in day_ticks("30 2 * * *", tz, spring)] == ["03:00"]
    repeated_hour = "1" if tz.startswith("America") else "2"  # NY repeats 01:xx, Berlin 02:xx
    fall_ticks = day_ticks(f"30 {repeated_hour} * * *", tz, fall)
    assert len(fall_ticks) == 1
    assert len(day_ticks("30 2 * * *", tz, fall)) == 1


def test_dst_table_new_york() -> None:
    """The exact hourly ticks around both New York transitions."""
    spring = local(day_ticks("0 * * * *", "America/New_York", date(2024, 3, 10)))
    assert spring[:4] == ["00:00-0500", "01:00-0500", "03:00-0400", "04:00-0400"]
    fall = local(day_ticks("0 * * * *", "America/New_York", date(2024, 11, 3)))
    assert fall[:4] == ["00:00-0400", "01:00-0400", "01:00-0500", "02:00-0500"]


def test_lord_howe_half_hour_shift_skips_nothing_it_should_not() -> None:
    """Australia/Lord_Howe moves 30 minutes: only the wall times that do not exist go."""
    tz = "Australia/Lord_Howe"
    # Spring (6 Oct 2024): 02:00 → 02:30, so 02:00 and 02:15 never happen.
    spring = date(2024, 10, 6)
    assert len(day_ticks("*/30 * * * *", tz, spring)) == 47  # 02:00 is gone
    assert len(day_ticks("0 * * * *", tz, spring)) == 23
    assert local(day_ticks("0 2 * * *", tz, spring)) == ["02:30+1100"]  # next valid time
    assert local(day_ticks("15 2 * * *", tz, spring)) == ["02:30+1100"]
    assert local(day_ticks("45 2 * * *", tz, spring)) == ["02:45+1100"]
    # Fall (7 Apr 2024): 02:00 → 01:30, so 01:30-01:59 happen twice.
    fall = date(2024, 4, 7)
    assert len(day_ticks("*/30 * * * *", tz, fall)) == 49  # real half hours
    assert len(day_ticks("0 * * * *", tz, fall)) == 24  # 01:00 is not repeated
    assert len(day_ticks("45 1 * * *", tz, fall)) == 1  # a daily run fires once


def test_every_ticks_are_epoch_multiples() -> None:
    """`every` ticks fall on multiples of the interval since the Unix epoch."""
    p = strego.Periodic("t", every=timedelta(minutes=15), tz="Asia/Kolkata")
    start = datetime(2024, 1, 1, 0, 7, tzinfo=UTC)
    ticks = p.ticks(start, start + timedelta(hours=1))
    assert [t.astimezone(UTC).strftime("%H:%M") for t in ticks] == [
        "00:15",
        "00:30",
        "00:45",
        "01:00",
    ]
    assert all(int(t.timestamp()) % 900 == 0 for t in ticks)
    assert p.spec.next_after(899_999) == 900_000
    assert p.spec.next_after(900_000) == 1_800_000


def test_ticks_is_half_open_and_wants_aware_datetimes() -> None:
    """ticks(start, end) includes start and excludes end; naive datetimes are refused."""
    p = strego.Periodic("t", every=60)
    start = datetime(2024, 1, 1, tzinfo=UTC)
    assert p.ticks(start, start + timedelta(minutes=2)) == [start, start + timedelta(minutes=1)]
    with pytest.raises(ValueError, match="aware"):
        p.ticks(datetime(2024, 1, 1), datetime(2024, 1, 2))


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({}, "exactly one of cron= or every="),
        ({"cron": "* * * * *", "every": 5}, "exactly one"),
        ({"cron": "61 * * * *"}, "invalid cron"),
        ({"cron": "* * * *"}, "5 standard fields"),
        ({"cron": "0 * * * * *"}, "5 standard fields"),
        ({"cron": "0 9 * * *", "tz": "Mars/Olympus"}, "unknown time zone"),
        ({"every": 0.5}, "at least 1 second"),
        ({"every": -1}, "every must be"),
        ({"every": 5, "catchup": "some"}, "catchup must be"),
        ({"every": 5, "overlap": "queue"}, "overlap must be"),
        ({"every": 5, "max_catchup": 0}, "max_catchup"),
        ({"every": 5, "max_lateness": -1}, "max_lateness"),
        ({"every": 5, "unique_key": "x"}, "unknown options unique_key"),
        ({"every": 5, "priority": 11}, "priority"),
        ({"every": 5, "name": "a\nb"}, "printable"),
        ({"every": 5, "name": "n" * 151}, "1-150"),
        ({"every": 5, "queue": "a b"}, "queue"),
    ],
)
def test_invalid_options_fail_at_construction(kwargs: dict[str, object], message: str) -> None:
    """Bad cron, zone, interval or option: a clear ValueError when built."""
    with pytest.raises(ValueError, match=message):
        strego.Periodic("t", **kwargs)  # type: ignore[arg-type]


def test_definition_round_trips() -> None:
    """What a worker stores is what a worker of another deploy fires from."""
    p = strego.Periodic(
        "reports:daily",
        {"kind": "daily"},
        cron="0 9 * * 1-5",
        tz="Europe/Berlin",
        name="daily",
        queue="reports",
        catchup="all",
        max_catchup=3,
        overlap="skip",
        priority=5,
        max_retry=1,
        timeout=30,
        labels={"team": "x"},
    )
    d = Definition.parse(p.name, p.queue, p.definition())
    assert (d.type, d.spec.cron, d.spec.tz, d.catchup, d.max_catchup, d.overlap) == (
        "reports:daily", "0 9 * * 1-5", "Europe/Berlin", "all", 3, "skip",
    )  # fmt: skip
    message = d.message("periodic:daily:1", 5)
    assert message.payload == b'{"kind":"daily"}'
    assert (message.priority, message.max_retry, message.timeout_s) == (5, 1, 30)
    assert message.labels == {"team": "x"} and message.explicit_id
    assert p.definition() == strego.Periodic(
        "reports:daily", {"kind": "daily"}, cron="0 9 * * 1-5", tz="Europe/Berlin",
        name="daily", queue="reports", catchup="all", max_catchup=3, overlap="skip",
        priority=5, max_retry=1, timeout=30, labels={"team": "x"},
    ).definition()  # fmt: skip


def test_unreadable_definition_is_a_configuration_error() -> None:
    """Garbage in the definitions hash is refused with a message, never fired."""
    for garbage in ["{", "[]", '{"tz":"UTC","type":"t"}', '{"tz":"UTC","type":"t","every_ms":5}']:
        with pytest.raises(strego.ConfigurationError, match="definition"):
            Definition.parse("n", "q", garbage)


EVERY_1 = strego.Periodic("t", every=1).spec


def run_plan(next_ms: int, now_ms: int, catchup: str, **kw: int) -> tuple[list[int], int, int]:
    fire = plan(
        EVERY_1,
        stored_next_ms=next_ms,
        now_ms=now_ms,
        catchup=catchup,
        max_catchup=kw.get("max_catchup", 10),
        max_lateness_ms=kw.get("max_lateness_ms", 600_000),
    )
    return list(fire.ticks), fire.next_ms, fire.missed


def test_plan_on_time_fires_the_tick_for_every_catchup() -> None:
    """One due tick, on time: latest, all and none all fire it."""
    for catchup in ("latest", "all", "none"):
        assert run_plan(10_000, 10_020, catchup) == ([10_000], 11_000, 0)


def test_plan_after_an_outage() -> None:
    """Eight ticks missed: latest → the last, all → max_catchup newest, none → nothing."""
    assert run_plan(10_000, 17_500, "latest") == ([17_000], 18_000, 7)
    assert run_plan(10_000, 17_500, "all", max_catchup=5) == (
        [13_000, 14_000, 15_000, 16_000, 17_000],
        18_000,
        3,
    )
    assert run_plan(10_000, 17_500, "none") == ([], 18_000, 8)


def test_plan_lateness_and_start() -> None:
    """latest skips a tick later than max_lateness; 0 (new, resumed) starts after now."""
    assert run_plan(10_000, 12_500, "latest", max_lateness_ms=400) == ([], 13_000, 3)
    assert run_plan(0, 12_500, "latest") == ([], 13_000, 0)
    assert run_plan(20_000, 12_500, "latest") == ([], 20_000, 0)  # not due yet


def test_plan_far_behind_is_bounded() -> None:
    """A year-long outage of an every-second schedule is planned without walking a year."""
    year_ms = 365 * 86_400_000
    ticks, next_ms, missed = run_plan(1_000, year_ms + 500, "all", max_catchup=3)
    assert ticks == [year_ms - 2_000, year_ms - 1_000, year_ms]
    assert next_ms == year_ms + 1_000 and missed > 0


def test_periodic_not_found_is_a_strego_lookup_error() -> None:
    """An unknown schedule name raises a StregoError that is also a LookupError."""
    error = strego.errors.PeriodicNotFoundError("n", "q")
    assert isinstance(error, strego.StregoError) and isinstance(error, LookupError)
    assert (error.name, error.queue) == ("n", "q")


def test_longest_name_still_makes_valid_task_ids() -> None:
    """A 150-character name's run ids (scheduled and triggered) are valid task ids."""
    name = "n" * 150
    strego.Periodic("t", every=5, name=name)
    strego.Task("t", id=f"periodic:{name}:{253_402_300_799_000}")
    strego.Task("t", id=f"periodic:{name}:manual-{'0' * 26}")
