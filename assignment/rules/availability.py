"""When a rep can take a lead: the on/off switch, out-of-office days and working hours in the rep's time zone."""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from django.utils.translation import gettext as _

from assignment.rules.types import WEEKDAYS, RepSnapshot

CLOCK = re.compile(r"^([01]\d|2[0-3]):[0-5]\d$|^24:00$")


def _zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo("UTC")


def local_time(rep: RepSnapshot, now: datetime) -> datetime:
    return now.astimezone(_zone(rep.time_zone))


def _clock(text: str) -> time:
    return time.max if text == "24:00" else time.fromisoformat(text)


def in_working_hours(rep: RepSnapshot, now: datetime) -> bool:
    """Whether ``now`` falls in one of the rep's spans for that weekday (local time); no hours set = always."""
    if not rep.working_hours:
        return True
    local = local_time(rep, now)
    spans = rep.working_hours.get(WEEKDAYS[local.weekday()]) or []
    moment = local.time().replace(tzinfo=None)
    return any(_clock(start) <= moment < _clock(end) for start, end in spans)


def out_of_office_until(rep: RepSnapshot, now: datetime) -> date | None:
    """The last day of the out-of-office range covering today (in the rep's time zone), or None."""
    today = local_time(rep, now).date()
    for start, end in rep.out_of_office:
        if start <= today <= end:
            return end
    return None


def add_working_minutes(rep: RepSnapshot, start: datetime, minutes: int) -> datetime:
    """``start`` plus ``minutes`` of the rep's working time (their spans, their time zone, out-of-office days skipped).

    No working hours set: plain minutes. Nothing workable within 60 days: plain minutes too, so a
    deadline always exists.
    """
    if not rep.working_hours:
        return start + timedelta(minutes=minutes)
    zone = _zone(rep.time_zone)
    local = start.astimezone(zone)
    left = timedelta(minutes=minutes)
    for offset in range(60):
        day = local.date() + timedelta(days=offset)
        if any(first <= day <= last for first, last in rep.out_of_office):
            continue
        for span_start, span_end in sorted(rep.working_hours.get(WEEKDAYS[day.weekday()]) or []):
            begin = datetime.combine(day, _clock(span_start), zone)
            end = datetime.combine(day, _clock(span_end), zone)
            begin = max(begin, local)
            if end <= begin:
                continue
            if end - begin >= left:
                return (begin + left).astimezone(start.tzinfo)
            left -= end - begin
    return start + timedelta(minutes=minutes)


def hours_text(rep: RepSnapshot, now: datetime) -> str:
    """The rep's hours for today in words, e.g. ``mon 09:00–12:00, 13:00–18:00 (Asia/Shanghai)``."""
    weekday = WEEKDAYS[local_time(rep, now).weekday()]
    spans = rep.working_hours.get(weekday) or []
    text = ", ".join(f"{start}–{end}" for start, end in spans) or _("day off")
    return f"{weekday} {text} ({rep.time_zone})"


# --- Validation of the profile's JSON fields (used by the API and the admin) ----------------------


def validate_time_zone(name: Any) -> list[str]:
    try:
        ZoneInfo(str(name))
    except (ZoneInfoNotFoundError, ValueError):
        return [_("Unknown time zone “%(zone)s”; use an IANA name such as Asia/Shanghai.") % {"zone": name}]
    return []


def validate_working_hours(value: Any) -> list[str]:
    """``{"mon": [["09:00", "18:00"]], …}``: known weekdays, HH:MM clocks, each span ending after it starts."""
    if not isinstance(value, Mapping):
        return [_('Working hours are written {"mon": [["09:00", "18:00"]], …}.')]
    errors: list[str] = []
    for day, spans in value.items():
        if day not in WEEKDAYS:
            errors.append(_("Unknown weekday “%(day)s”; use mon, tue, wed, thu, fri, sat, sun.") % {"day": day})
            continue
        if not isinstance(spans, list):
            errors.append(_("The hours of %(day)s are a list of [start, end] pairs.") % {"day": day})
            continue
        for span in spans:
            if not (isinstance(span, list | tuple) and len(span) == 2 and all(isinstance(t, str) for t in span)):
                errors.append(_("The hours of %(day)s are a list of [start, end] pairs.") % {"day": day})
            elif not all(CLOCK.match(t) for t in span):
                errors.append(_("Write times as HH:MM, e.g. 09:00 (%(day)s).") % {"day": day})
            elif _clock(span[0]) >= _clock(span[1]):
                errors.append(_("A span must end after it starts (%(day)s).") % {"day": day})
    return errors


def parse_out_of_office(value: Any) -> tuple[tuple[date, date], ...]:
    """The stored ranges as date pairs; call ``validate_out_of_office`` first (bad items are skipped here)."""
    ranges: list[tuple[date, date]] = []
    for item in value if isinstance(value, list) else []:
        try:
            ranges.append((date.fromisoformat(item["start"]), date.fromisoformat(item["end"])))
        except (KeyError, TypeError, ValueError):
            continue
    return tuple(ranges)


def validate_out_of_office(value: Any) -> list[str]:
    if not isinstance(value, list):
        return [_('Out of office is a list of {"start": "2026-12-24", "end": "2026-12-26"}.')]
    errors: list[str] = []
    for item in value:
        try:
            start, end = date.fromisoformat(item["start"]), date.fromisoformat(item["end"])
        except (KeyError, TypeError, ValueError):
            errors.append(_('Each range is {"start": "YYYY-MM-DD", "end": "YYYY-MM-DD"}.'))
            continue
        if end < start:
            errors.append(_("A range must not end before it starts (%(start)s).") % {"start": start.isoformat()})
    return errors
