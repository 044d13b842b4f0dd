"""PrebuiltFieldsMixin: fields built once per class, yet every serializer instance validates on its own."""

from __future__ import annotations

from django.utils import translation
from rest_framework import serializers

from common.serializers import PrebuiltFieldsMixin
from leads.api.serializers import LeadSerializer


class Sample(PrebuiltFieldsMixin, serializers.Serializer[dict[str, object]]):
    name = serializers.CharField(max_length=5)
    labels = serializers.ListField(child=serializers.CharField(max_length=3), required=False)


def test_each_instance_gets_its_own_bound_fields() -> None:
    first, second = Sample(), Sample()
    for name in ("name", "labels"):
        assert first.fields[name] is not second.fields[name]
        assert first.fields[name].parent is first
        assert second.fields[name].parent is second
    first_labels, second_labels = first.fields["labels"], second.fields["labels"]
    assert isinstance(first_labels, serializers.ListField)
    assert isinstance(second_labels, serializers.ListField)
    assert first_labels.child.parent is first_labels
    assert second_labels.child.parent is second_labels


def test_instances_validate_independently_and_field_by_field() -> None:
    bad = Sample(data={"name": "far too long", "labels": ["ok", "toolong"]})
    good = Sample(data={"name": "Ada", "labels": ["ok"]})
    assert not bad.is_valid()
    assert set(bad.errors) == {"name", "labels"}
    assert bad.errors["labels"] == {1: ["Ensure this field has no more than 3 characters."]}
    assert good.is_valid(), good.errors
    assert good.validated_data == {"name": "Ada", "labels": ["ok"]}


def test_messages_follow_the_language_of_each_request() -> None:
    with translation.override("zh-hans"):
        chinese = Sample(data={})
        assert not chinese.is_valid()
    english = Sample(data={})
    assert not english.is_valid()
    assert chinese.errors["name"] == ["这是必填项。"]
    assert english.errors["name"] == ["This field is required."]


def test_the_lead_serializer_builds_the_same_fields_as_drf_would() -> None:
    class Rebuilt(serializers.ModelSerializer):
        Meta = LeadSerializer.Meta

    Rebuilt._declared_fields = LeadSerializer._declared_fields
    ours, drf = LeadSerializer().fields, Rebuilt().fields
    assert list(ours) == list(drf)
    for name in list(drf.keys()):
        assert type(ours[name]) is type(drf[name]), name
        assert ours[name].required == drf[name].required, name
        assert ours[name].read_only == drf[name].read_only, name
        assert [type(v) for v in ours[name].validators] == [type(v) for v in drf[name].validators], name
