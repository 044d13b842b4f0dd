"""Serializer helpers shared by the apps' APIs."""

from __future__ import annotations

import copy
from typing import Any, ClassVar

from rest_framework import serializers


class PrebuiltFieldsMixin:
    """Build a ModelSerializer's fields once per class and hand each instance a copy.

    ``ModelSerializer.get_fields`` introspects the model for every serializer instance: for the 39-field
    lead that is ~11 ms per request, twice the SQL of a create, and DRF's deep copy of fields costs as
    much again. The fields depend only on the class (labels and messages stay lazy translations), and a
    field keeps no per-request state besides what ``bind`` sets, so each instance gets a shallow copy of
    the prototype fields: new objects to bind, sharing the immutable validators and choices. A list or
    dict field's ``child`` is bound to its parent, so it is copied and re-bound too. Fields that depend
    on the request belong in ``validate_*`` methods, never in ``get_fields``.
    """

    _prebuilt_fields: ClassVar[dict[type, dict[str, serializers.Field[Any, Any, Any, Any]]]] = {}

    def get_fields(self) -> dict[str, serializers.Field[Any, Any, Any, Any]]:
        cls = type(self)
        prototype = PrebuiltFieldsMixin._prebuilt_fields.get(cls)
        if prototype is None:
            prototype = super().get_fields()  # type: ignore[misc]
            PrebuiltFieldsMixin._prebuilt_fields[cls] = prototype
        return {name: _unbound_copy(field) for name, field in prototype.items()}


def _unbound_copy(field: serializers.Field[Any, Any, Any, Any]) -> serializers.Field[Any, Any, Any, Any]:
    if isinstance(field, serializers.BaseSerializer):
        return copy.deepcopy(field)  # a nested serializer has fields of its own
    clone = copy.copy(field)
    child = getattr(field, "child", None)
    if isinstance(child, serializers.Field):
        clone.child = copy.copy(child)  # type: ignore[attr-defined]
        clone.child.parent = clone  # type: ignore[attr-defined]  # already bound by the parent's __init__
    return clone
