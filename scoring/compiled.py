"""A rule set prepared for scoring many leads at once: the same score and grade as ``rules.score_from_facts``.

The rules engine builds a worded breakdown for one lead (about 80 µs a lead with the default rules);
a full rescore of a million leads needs the number only, and most of the engine's work repeats
itself across leads: a fit condition is tested against the same few hundred industries and titles
again and again, and an event bucket (type, age in days, property values) matches the same rules
whatever lead it belongs to. ``CompiledRuleSet`` memoizes both and keeps the arithmetic of the
engine exactly:

* a fit rule holds iff ``rules.condition_holds`` says so for that value (memoized per value);
* a behaviour rule's weight is ``math.fsum`` of ``count × rules.decay(age, half-life)`` over the
  matching buckets, or the latest matching bucket's decay when it is once-only; its points are
  ``rule.points × weight``, capped like the engine caps them;
* the total is ``math.fsum`` of the contributions, rounded and clamped, graded by ``rules.grade_for``.

``math.fsum`` is correctly rounded, so the order in which buckets or rules are summed cannot change a
result: ``tests/scoring/test_compiled.py`` checks equality with the engine on random facts.
"""

from __future__ import annotations

import math
from collections.abc import Hashable, Mapping, Sequence
from typing import Any

from scoring import rules
from scoring.rules import RuleSet

# An event bucket as the bulk path reads it: (type, age in whole days, count, ((path, text or None), …)).
Bucket = tuple[str, int, int, tuple[tuple[str, str | None], ...]]
# One rule that fired: (index of the rule in the rule set, points after decay and cap, events counted).
Fired = tuple[int, float, int]


def _key(value: Any) -> Hashable | None:
    """A memo key for a fact, or None when the value cannot be one (a dict, a list holding dicts)."""
    if isinstance(value, list | tuple):
        try:
            key = ("list", tuple(value))
            hash(key)
        except TypeError:
            return None
        return key
    try:
        hash(value)
    except TypeError:
        return None
    # 1, 1.0 and True are one dict key but not one fact: keep the type in the key.
    return (type(value), value)


class CompiledRuleSet:
    """``ruleset`` with per-value memos for fit conditions and per-bucket memos for event rules."""

    def __init__(self, ruleset: RuleSet) -> None:
        self.ruleset = ruleset
        self._fit: list[tuple[int, rules.Rule, rules.Condition, dict[Hashable, bool]]] = []
        self._events: dict[str, list[tuple[int, rules.Rule, float]]] = {}
        for index, rule in enumerate(ruleset.rules):
            if rule.is_behaviour:
                half_life = ruleset.half_life_days if rule.half_life_days is None else rule.half_life_days
                self._events.setdefault(rule.event_type, []).append((index, rule, half_life))
            elif rule.condition is not None:
                self._fit.append((index, rule, rule.condition, {}))
        self._buckets: dict[tuple[str, int, tuple[tuple[str, str | None], ...]], tuple[tuple[int, float], ...]] = {}
        # A score is a whole number in 0–100: its grade is looked up, not searched for.
        self._grades = [rules.grade_for(score, ruleset.bands) for score in range(rules.MAX_SCORE + 1)]

    @property
    def reads_inactivity(self) -> bool:
        """Whether a rule reads ``days_inactive`` (the bulk path computes it only then)."""
        return any(condition.field == rules.DAYS_INACTIVE for _, _, condition, _ in self._fit)

    def fields(self) -> frozenset[str]:
        """The lead fields the fit rules read (``email`` too when a rule reads the e-mail domain)."""
        names = set(self.ruleset.fields())
        if rules.EMAIL_DOMAIN in names:
            names |= {"email"}
        return frozenset(names - set(rules.DERIVED_FIELDS))

    def _fact(self, name: str, fields: Mapping[str, Any], attributes: Mapping[str, Any], days_inactive: Any) -> Any:
        if name.startswith(rules.ATTR_PREFIX):
            return attributes.get(name[len(rules.ATTR_PREFIX) :])
        if name == rules.EMAIL_DOMAIN:
            email = str(fields.get("email") or "")
            return email.rpartition("@")[2].strip().casefold() if "@" in email else ""
        if name == rules.DAYS_INACTIVE:
            return days_inactive
        return fields.get(name)

    def _matches(self, event_type: str, age: int, properties: tuple[tuple[str, str | None], ...]) -> tuple[Any, ...]:
        """(rule index, decay weight of one event) for every rule of ``event_type`` this bucket matches."""
        key = (event_type, age, properties)
        found = self._buckets.get(key)
        if found is None:
            values = dict(properties)
            found = tuple(
                (index, rules.decay(age, half_life))
                for index, rule, half_life in self._events.get(event_type, ())
                if (rule.window_days is None or age <= rule.window_days)
                and all(rules.condition_holds(c, values.get(c.field)) for c in rule.event_filters)
            )
            self._buckets[key] = found
        return found

    def evaluate(
        self,
        fields: Mapping[str, Any],
        attributes: Mapping[str, Any],
        buckets: Sequence[Bucket],
        days_inactive: int | None,
    ) -> tuple[int, str, tuple[Fired, ...]]:
        """Score, grade and the rules that fired, for one lead's facts."""
        fired: list[Fired] = []
        for index, rule, condition, memo in self._fit:
            name = condition.field
            fact = fields.get(name) if name in fields else self._fact(name, fields, attributes, days_inactive)
            kind = fact.__class__
            # Texts and numbers (nearly every fact) are their own memo key; other values go through _key.
            key = (kind, fact) if kind is str or kind is int or kind is float or fact is None else _key(fact)
            holds = memo.get(key) if key is not None else None
            if holds is None:
                holds = rules.condition_holds(condition, fact)
                if key is not None:
                    memo[key] = holds
            if holds and rule.points != 0:
                fired.append((index, rule.points, 0))
        if buckets and self._events:
            # Per rule that matched: [its terms (count × decay weight), events counted, youngest age].
            matched: dict[int, list[Any]] = {}
            events = self._events
            matches = self._matches
            for event_type, age, count, properties in buckets:
                if count <= 0 or event_type not in events:
                    continue
                for index, weight in matches(event_type, age, properties):
                    entry = matched.get(index)
                    if entry is None:
                        matched[index] = [[count * weight], count, age]
                    else:
                        entry[0].append(count * weight)
                        entry[1] += count
                        if age < entry[2]:
                            entry[2] = age
            for index in sorted(matched):
                terms, total_count, youngest = matched[index]
                rule = self.ruleset.rules[index]
                if rule.once:
                    half_life = self.ruleset.half_life_days if rule.half_life_days is None else rule.half_life_days
                    weight, counted = rules.decay(youngest, half_life), 1
                else:
                    # fsum of one term is the term itself: skip the call for the common single bucket.
                    weight, counted = (terms[0] if len(terms) == 1 else math.fsum(terms)), total_count
                points = rule.points * weight
                if rule.cap is not None and abs(points) > abs(rule.cap):
                    points = math.copysign(abs(rule.cap), points)
                if points != 0:
                    fired.append((index, points, counted))
        total = math.fsum(points for _, points, _ in fired)
        score = max(rules.MIN_SCORE, min(rules.MAX_SCORE, round(total)))
        return score, self._grades[score], tuple(fired)

    def evaluate_facts(self, facts: rules.LeadFacts) -> tuple[int, str, tuple[Fired, ...]]:
        """``evaluate`` for a ``LeadFacts`` (what the engine takes): the equivalence tests use it."""
        buckets = [(b.type, b.age_days, b.count, b.properties) for b in facts.events]
        return self.evaluate(facts.fields, facts.attributes, buckets, facts.days_inactive)
