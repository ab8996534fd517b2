"""Validation of a declaration body: field checks, cross-field checks, unknown fields, and every problem at once."""

from __future__ import annotations

import copy
import datetime as dt
from typing import Any

import pytest
from pydantic import ValidationError

from services.declarations.schemas import EXAMPLE, CancelIn, DeclarationIn


def errors_of(body: dict[str, Any]) -> list[tuple[tuple[Any, ...], str]]:
    """(location, code) of every problem pydantic reports for `body`."""
    with pytest.raises(ValidationError) as info:
        DeclarationIn.model_validate(body)
    return [(tuple(e["loc"]), e["type"]) for e in info.value.errors()]


@pytest.fixture
def body() -> dict[str, Any]:
    return copy.deepcopy(EXAMPLE)


def test_the_example_is_valid() -> None:
    model = DeclarationIn.model_validate(EXAMPLE)
    assert model.model_dump(mode="json")["containers"][0]["number"] == "CSQU3054383"


def test_unknown_fields_are_rejected_at_every_level(body: dict[str, Any]) -> None:
    body["colour"] = "red"
    body["consignor"]["nickname"] = "x"
    body["items"][0]["discount"] = "1"
    found = errors_of(body)
    assert (("colour",), "extra_forbidden") in found
    assert (("consignor", "nickname"), "extra_forbidden") in found
    assert (("items", 0, "discount"), "extra_forbidden") in found


@pytest.mark.parametrize(
    ("path", "value", "code"),
    [
        (("kind",), "transit", "enum"),
        (("procedure_code",), "a11", "string_pattern_mismatch"),
        (("consignor", "country"), "XX", "iso3166.code"),
        (("items", 0, "currency"), "XYZ", "iso4217.code"),
        (("items", 0, "unit"), "BOX", "unece_rec20.code"),
        (("items", 0, "incoterms"), "FOO", "incoterms.code"),
        (("items", 0, "hs_code"), "0810909", "hs.format"),
        (("items", 0, "hs_code"), "77109092", "hs.chapter"),
        (("items", 0, "hs_code"), "98109092", "hs.chapter"),
        (("items", 0, "hs_code"), "00109092", "hs.chapter"),
        (("items", 0, "quantity"), "0", "greater_than"),
        (("items", 0, "customs_value"), "1.001", "decimal_max_places"),
        (("containers", 0, "number"), "CSQU3054384", "iso6346.check_digit"),
        (("containers", 0, "number"), "CSQX3054383", "iso6346.format"),
        (("containers", 0, "size_type"), "2G1", "iso6346.size_type"),
        (("transport", "truck_plate"), "24C", "plate.format"),
        (("transport", "expected_arrival"), "2026-11-28T08:30:00", "datetime.timezone"),
        (("preferential_origin", "form_e_number"), "e26/1", "string_pattern_mismatch"),
    ],
)
def test_field_checks(body: dict[str, Any], path: tuple[Any, ...], value: Any, code: str) -> None:
    target = body
    for part in path[:-1]:
        target = target[part]
    target[path[-1]] = value
    assert (path, code) in errors_of(body)


@pytest.mark.parametrize(
    ("change", "loc", "code"),
    [
        (lambda b: b.update(procedure_code="B11"), ("procedure_code",), "procedure_code.kind_mismatch"),
        (lambda b: b.update(procedure_code="Z99"), ("procedure_code",), "procedure_code.unknown"),
        (lambda b: b["consignee"].pop("tax_id"), ("consignee", "tax_id"), "tax_id.required"),
        (lambda b: b["consignee"].update(tax_id="0100233489"), ("consignee", "tax_id"), "vn_mst.check_digit"),
        (
            lambda b: b["consignor"].update(tax_id="91110000600037341M"),
            ("consignor", "tax_id"),
            "cn_uscc.check_character",
        ),
        (lambda b: b["items"][0].update(net_mass_kg="14000"), ("items", 0, "net_mass_kg"), "mass.net_exceeds_gross"),
        (lambda b: b.update(total_gross_mass_kg="13001"), ("total_gross_mass_kg",), "mass.total_mismatch"),
        (
            lambda b: b["containers"].append(dict(b["containers"][0], number="csqu 305438 3")),
            ("containers", 1, "number"),
            "container.duplicate",
        ),
        (
            lambda b: b["preferential_origin"].update(issued_on=(dt.date.today() + dt.timedelta(days=5)).isoformat()),
            ("preferential_origin", "issued_on"),
            "form_e.future_date",
        ),
    ],
)
def test_cross_field_checks(body: dict[str, Any], change: Any, loc: tuple[Any, ...], code: str) -> None:
    change(body)
    assert (loc, code) in errors_of(body)


def test_a_party_outside_vn_and_cn_needs_no_tax_id(body: dict[str, Any]) -> None:
    body["consignor"] = {"name": "Bangkok Traders", "address": "1 Sukhumvit, Bangkok", "country": "TH"}
    DeclarationIn.model_validate(body)


def test_every_problem_is_reported_at_once(body: dict[str, Any]) -> None:
    """Field errors, cross-field errors and unknown fields together, in one pass."""
    body["kind"] = "export"  # A11 is an import procedure: cross-field
    body["consignee"]["tax_id"] = "0100233489"  # bad MST: cross-field
    body["items"][0]["hs_code"] = "7710909"  # field
    body["items"][0]["net_mass_kg"] = "14000"  # cross-field
    body["containers"][0]["number"] = "CSQU3054384"  # field
    body["transport"].pop("driver_name")  # missing
    body["surprise"] = True  # unknown
    codes_found = {code for _, code in errors_of(body)}
    assert {
        "procedure_code.kind_mismatch",
        "vn_mst.check_digit",
        "hs.format",
        "mass.net_exceeds_gross",
        "iso6346.check_digit",
        "missing",
        "extra_forbidden",
    } <= codes_found


def test_cross_field_checks_survive_broken_fields(body: dict[str, Any]) -> None:
    body["items"] = "not a list"
    body["consignor"] = 7
    body["preferential_origin"] = {"form_e_number": "E1234", "issued_on": "not a date"}
    found = errors_of(body)
    assert any(loc[0] == "items" for loc, _ in found)


@pytest.mark.parametrize("garbage", [None, [], "x", 3])
def test_non_object_bodies_are_errors_not_crashes(garbage: Any) -> None:
    with pytest.raises(ValidationError):
        DeclarationIn.model_validate(garbage)


@pytest.mark.parametrize(
    "value", ["NaN", "-NaN",
              "sNaN", "Infinity"]
)  # fmt: skip
def test_non_finite_masses_are_validation_errors(body: dict[str, Any], value: str) -> None:
    """A mass the cross-field sums cannot handle must still be a validation error, not an exception."""
    body["items"][0]["net_mass_kg"] = value
    assert any(loc == ("items", 0, "net_mass_kg") for loc, _ in errors_of(body))


@pytest.mark.parametrize("value", ["NaN", "Infinity"])
def test_non_finite_totals_are_validation_errors(body: dict[str, Any], value: str) -> None:
    body["total_gross_mass_kg"] = value
    assert any(loc == ("total_gross_mass_kg",) for loc, _ in errors_of(body))


def test_strings_are_stripped_and_codes_upper_cased(body: dict[str, Any]) -> None:
    body["transport"]["truck_plate"] = "  24c-123.45 "
    body["containers"][0]["size_type"] = "22g1"
    model = DeclarationIn.model_validate(body)
    assert model.transport.truck_plate == "24C-123.45"
    assert model.containers[0].size_type == "22G1"


def test_cancel_needs_a_real_reason() -> None:
    with pytest.raises(ValidationError):
        CancelIn.model_validate({"reason": "   "})
    with pytest.raises(ValidationError):
        CancelIn.model_validate({})
    assert CancelIn.model_validate({"reason": " changed my mind "}).reason == "changed my mind"


def test_a_declaration_body_can_take_the_fast_canonical_form() -> None:
    """document_of() hashes bodies with canonical_json(plain=True): that is RFC 8785 only while the schema has
    no float fields and no free-form keys. This fails the day someone adds either."""
    from services.declarations.schemas import DeclarationIn

    schema = DeclarationIn.model_json_schema(mode="serialization")  # what model_dump(mode="json") produces
    found: list[str] = []

    def walk(node: object, where: str) -> None:
        if isinstance(node, dict):
            if node.get("type") == "number":
                found.append(f"{where}: number")
            if node.get("additionalProperties") not in (None, False):
                found.append(f"{where}: free-form keys")
            for key, sub in node.items():
                walk(sub, f"{where}/{key}")
        elif isinstance(node, list):
            for n, sub in enumerate(node):
                walk(sub, f"{where}/{n}")

    walk(schema, "")
    assert found == []


def test_the_fast_canonical_form_of_the_example_is_rfc8785() -> None:
    import rfc8785

    from services.declarations.schemas import EXAMPLE, DeclarationIn
    from services.kernel.outbox import canonical_json

    document = DeclarationIn.model_validate(EXAMPLE).model_dump(mode="json")
    assert canonical_json(document, plain=True) == rfc8785.dumps(document)
