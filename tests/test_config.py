"""config: YAML loading, --set overrides, and dataclass building with field-path errors."""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest

from rewritelab.config import FieldError, apply_overrides, from_dict, load_yaml, set_path, to_dict
from rewritelab.errors import UserError


@dataclass
class Inner:
    size: int = 3
    names: tuple[str, ...] = ("a",)


@dataclass
class Section:
    rate: float
    mode: str = "fast"
    inner: Inner = field(default_factory=Inner)
    limit: int | None = None

    def validate(self) -> None:
        if self.rate <= 0:
            raise FieldError("rate", f"must be positive, got {self.rate}")


def test_load_yaml_reads_a_mapping(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("data:\n  num_rules: 4\n", encoding="utf-8")
    assert load_yaml(path) == {"data": {"num_rules": 4}}
    path.write_text("", encoding="utf-8")
    assert load_yaml(path) == {}


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"\xff\xfe\x00\x01binary", "not a UTF-8 text file"),
        (b"data: [1, 2\n", "malformed YAML"),
        (b"- a\n- b\n", "the top level must be a mapping"),
    ],
)
def test_load_yaml_bad_files_are_user_errors(tmp_path, content, message):
    path = tmp_path / "c.yaml"
    path.write_bytes(content)
    with pytest.raises(UserError, match=message):
        load_yaml(path)


def test_load_yaml_missing_file_and_directory(tmp_path):
    with pytest.raises(UserError, match="config file not found"):
        load_yaml(tmp_path / "nope.yaml")
    with pytest.raises(UserError, match="is a directory"):
        load_yaml(tmp_path)


def test_overrides_parse_values_as_yaml_and_do_not_mutate():
    base = {"data": {"num_rules": 4}}
    out = apply_overrides(base, ["data.num_rules=500", "train.lr=1e-3", "data.alphabet=[a, b]"])
    assert out == {"data": {"num_rules": 500, "alphabet": ["a", "b"]}, "train": {"lr": "1e-3"}}
    assert base == {"data": {"num_rules": 4}}


@pytest.mark.parametrize("item", ["data.num_rules", "=3", "data..x=1", "data.x=[1"])
def test_malformed_overrides(item):
    with pytest.raises(UserError, match="--set"):
        apply_overrides({}, [item])


def test_set_path_refuses_to_descend_into_a_value():
    config = {"data": 3}
    with pytest.raises(UserError, match="'data' is not a section"):
        set_path(config, "data.num_rules", 1, "here")


def test_from_dict_builds_nested_dataclasses_and_round_trips():
    obj = from_dict(Section, {"rate": "1e-3", "inner": {"names": ["x", "y"]}, "limit": 5.0}, "sec")
    assert obj == Section(rate=1e-3, inner=Inner(names=("x", "y")), limit=5)
    assert from_dict(Section, to_dict(obj), "sec") == obj


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"rate": 1, "mdoe": "x"}, r"sec: unknown key 'mdoe' \(did you mean 'mode'\?\)"),
        ({}, "sec.rate: required field is missing"),
        ({"rate": True}, "sec.rate: expected a number"),
        ({"rate": 1, "inner": {"size": 1.5}}, "sec.inner.size: expected an integer"),
        ({"rate": 1, "inner": []}, "sec.inner: expected a mapping"),
        ({"rate": -1}, "sec.rate: must be positive"),
        ("nope", "sec: expected a mapping"),
    ],
)
def test_from_dict_errors_name_the_field(data, message):
    with pytest.raises(UserError, match=message):
        from_dict(Section, data, "sec")
