"""The CBV 2.0 EPCIS event hash ID (CBV 2.0 §8.9): `ni:///sha-256;{hex}?ver=CBV2.0` of a canonical pre-hash string.

An independent implementation of the published rules: fields in the canonical property order, `key=value` joined
without separators, lists named once with their elements sorted, CBV words and URNs as GS1 web URIs, EPC URIs and
Digital Link URIs as constrained canonical Digital Link URIs, times in UTC at millisecond precision, numbers without
trailing zeros, user extensions as `{namespace}local=value` sorted, `eventID`, `recordTime` and `errorDeclaration` left
out (an error declaration or an assigned id does not change what the event says). It is checked against the
`epcis-event-hash-generator` reference package on generated events; where the two differ and why is in
docs/traceability.md.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Callable, Mapping
from decimal import Decimal
from typing import Any

from services.traceability import cbv, identifiers

VERSION = "CBV2.0"
# Prefixes every EPCIS 2.0 JSON-LD document has from the standard context.
STANDARD_PREFIXES = {
    "gs1": "https://gs1.org/voc/",
    "epcis": "https://ref.gs1.org/epcis/",
    "cbv": "https://ref.gs1.org/cbv/",
    "cbvmda": "urn:epcglobal:cbv:mda:",
}
IGNORED = frozenset({"@context", "type", "eventID", "recordTime", "errorDeclaration"})
QUANTITY = ("epcClass", "quantity", "uom")
SENSOR_METADATA = (
    "time",
    "startTime",
    "endTime",
    "deviceID",
    "deviceMetadata",
    "rawData",
    "dataProcessingMethod",
    "bizRules",
)
SENSOR_REPORT = (
    "type",
    "exception",
    "deviceID",
    "deviceMetadata",
    "rawData",
    "dataProcessingMethod",
    "time",
    "microorganism",
    "chemicalSubstance",
    "value",
    "component",
    "stringValue",
    "booleanValue",
    "hexBinaryValue",
    "uriValue",
    "minValue",
    "maxValue",
    "meanValue",
    "sDev",
    "percRank",
    "percValue",
    "uom",
    "coordinateReferenceSystem",
)
TYPED_LISTS = {
    "bizTransactionList": ("bizTransaction", "bizTransaction-type"),
    "sourceList": ("source", "source-dest-type"),
    "destinationList": ("destination", "source-dest-type"),
}
EPC_LISTS = ("epcList", "inputEPCList", "childEPCs")
QUANTITY_LISTS = ("quantityList", "childQuantityList", "inputQuantityList")


def namespaces(context: Any) -> dict[str, str]:
    """The prefixes a JSON-LD `@context` declares (string entries are remote contexts: the standard one)."""
    found = dict(STANDARD_PREFIXES)
    entries = context if isinstance(context, list) else [context]
    for entry in entries:
        if isinstance(entry, dict):
            for prefix, value in entry.items():
                if isinstance(value, str) and not prefix.startswith("@"):
                    found[prefix] = value
                elif isinstance(value, dict) and isinstance(value.get("@id"), str):
                    found[prefix] = value["@id"]
    return found


def time_value(value: str) -> str:
    """UTC with millisecond precision and `Z` (sub-millisecond digits rounded half to even)."""
    moment = dt.datetime.fromisoformat(value.strip().replace("z", "Z"))
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.UTC)
    moment = moment.astimezone(dt.UTC)
    millis = round(moment.microsecond / 1000)
    moment = moment.replace(microsecond=0) + dt.timedelta(milliseconds=millis)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def number_value(value: int | float | Decimal) -> str:
    """A number without trailing zeros, in plain notation (1, 0.3434, 0.00001)."""
    if isinstance(value, int):
        return str(value)
    text = format(Decimal(repr(value) if isinstance(value, float) else value).normalize(), "f")
    return "0" if text in ("-0", "") else text


class PreHash:
    """Builds the pre-hash string of one event, with the namespaces of its document's context."""

    def __init__(self, prefixes: Mapping[str, str]) -> None:
        self.prefixes = prefixes

    # -- values ----------------------------------------------------------------------------------------------------

    def uri(self, value: str) -> str:
        """A URI value: CURIEs expanded, old CBV URNs as web URIs, GS1 identifiers as canonical Digital Link."""
        text = value.strip()
        prefix, sep, rest = text.partition(":")
        if sep and prefix in self.prefixes and not rest.startswith("//"):
            text = self.prefixes[prefix] + rest
        for vocabulary, (web, urn) in cbv.PREFIXES.items():
            if text.startswith(urn):
                text = cbv.WEB + web + text[len(urn) :]
                del vocabulary
                break
        try:
            return identifiers.normalise(text)
        except identifiers.IdentifierError:
            return text

    def vocab(self, vocabulary: str, value: str) -> str:
        """A CBV vocabulary value: bare words and URNs as GS1 web URIs."""
        text = value.strip()
        try:
            return cbv.web_uri(vocabulary, text)
        except ValueError:
            return self.uri(text)

    def scalar(self, value: Any) -> str:
        """An extension's value."""
        if isinstance(value, bool):
            return "true" if value else "false"
        if isinstance(value, int | float | Decimal):
            return number_value(value)
        if isinstance(value, dict) and "@value" in value:
            return self.scalar(value["@value"])
        return self.uri(str(value))

    def key(self, name: str) -> str:
        """An extension's key as `{namespace}local`."""
        prefix, sep, local = name.partition(":")
        if sep and prefix in self.prefixes and not local.startswith("//"):
            return "{" + self.prefixes[prefix] + "}" + local
        cut = max(name.rfind("#"), name.rfind("/"))
        if cut > 0 and sep:
            return "{" + name[: cut + 1] + "}" + name[cut + 1 :]
        return name

    # -- fields ----------------------------------------------------------------------------------------------------

    def field(self, name: str, value: str) -> str:
        return f"{name}={value}" if value else ""

    def extension(self, name: str, value: Any) -> list[str]:
        """`{ns}local=value`, or `{ns}local` followed by its sorted children; a list is one item per element."""
        if isinstance(value, list):
            return [part for item in value for part in self.extension(name, item)]
        key = self.key(name)
        if isinstance(value, dict) and "@value" not in value:
            children = sorted(part for k, v in value.items() if not k.startswith("@") for part in self.extension(k, v))
            return [key + "".join(children)]
        text = self.scalar(value)
        return [f"{key}={text}" if text else key]

    def extensions(self, obj: Mapping[str, Any], known: frozenset[str] | set[str]) -> str:
        return "".join(sorted(part for k, v in obj.items() if k not in known for part in self.extension(k, v)))

    def ordered(self, obj: Mapping[str, Any], order: tuple[str, ...], render: Callable[[str, Any], str]) -> str:
        return "".join(render(name, obj[name]) for name in order if name in obj)

    def quantity(self, element: Mapping[str, Any]) -> str:
        def render(name: str, value: Any) -> str:
            if name == "quantity":
                return self.field(name, number_value(value))
            return self.field(name, self.uri(value) if name == "epcClass" else str(value).strip())

        return "quantityElement" + self.ordered(element, QUANTITY, render)

    def typed(self, element: Mapping[str, Any], key: str, vocabulary: str) -> str:
        """A bizTransaction, source or destination: the type first, then the value (as the reference does)."""
        text = ""
        if element.get("type"):
            text += self.field("type", self.vocab(vocabulary, element["type"]))
        return text + self.field(key, self.uri(element[key]))

    def typed_list(self, name: str, items: list[Mapping[str, Any]]) -> str:
        """bizTransactionList, sourceList or destinationList: named once, elements sorted."""
        key, vocabulary = TYPED_LISTS[name]
        return name + "".join(sorted(self.typed(i, key, vocabulary) for i in items))

    def sensor_value(self, name: str, value: Any) -> str:
        if "time" in name.lower():
            return self.field(name, time_value(value))
        if name == "type":
            return self.field(name, self.uri(value))
        return self.field(name, self.scalar(value))

    def sensor(self, element: Mapping[str, Any]) -> str:
        text = "sensorElement"
        if isinstance(element.get("sensorMetadata"), dict):
            meta = element["sensorMetadata"]
            text += "sensorMetadata" + self.ordered(meta, SENSOR_METADATA, self.sensor_value)
            text += self.extensions(meta, set(SENSOR_METADATA))
        reports = sorted(
            "sensorReport" + self.ordered(r, SENSOR_REPORT, self.sensor_value) + self.extensions(r, set(SENSOR_REPORT))
            for r in element.get("sensorReport", [])
        )
        text += "".join(reports)
        return text + self.extensions(element, {"sensorMetadata", "sensorReport"})

    def event(self, event: Mapping[str, Any]) -> str:  # noqa: C901 - the canonical property order, one field each
        """The pre-hash string of `event` (EPCIS 2.0 JSON-LD)."""
        out = [f"eventType={event['type']}"]
        known: set[str] = set(IGNORED)

        def take(name: str) -> Any:
            known.add(name)
            return event.get(name)

        out.append(self.field("eventTime", time_value(take("eventTime"))))
        out.append(self.field("eventTimeZoneOffset", str(take("eventTimeZoneOffset")).strip()))
        certificates = take("certificationInfo")
        if certificates:
            values = certificates if isinstance(certificates, list) else [certificates]
            out.extend(sorted(self.field("certificationInfo", self.uri(v)) for v in values))
        if take("parentID"):
            out.append(self.field("parentID", self.uri(event["parentID"])))
        for name in (*EPC_LISTS, *QUANTITY_LISTS, "outputEPCList", "outputQuantityList"):
            items = take(name)
            if not items:
                continue
            if name.endswith("QuantityList") or name == "quantityList":
                out.append(name + "".join(sorted(self.quantity(q) for q in items)))
            else:
                out.append(name + "".join(sorted(self.field("epc", self.uri(e)) for e in items)))
        for name, vocabulary in (
            ("action", None),
            ("transformationID", None),
            ("bizStep", "bizStep"),
            ("disposition", "disposition"),
        ):
            value = take(name)
            if value:
                text = self.vocab(vocabulary, value) if vocabulary else self.uri(value)
                out.append(self.field(name, text))
        persistent = take("persistentDisposition")
        if persistent:
            parts = [
                self.field(which, self.vocab("disposition", v))
                for which in ("set", "unset")
                for v in persistent.get(which, [])
            ]
            out.append("persistentDisposition" + "".join(parts))
        for name in ("readPoint", "bizLocation"):
            place = take(name)
            if place:
                out.append(name + self.field("id", self.uri(place["id"])) + self.extensions(place, {"id"}))
        for name in TYPED_LISTS:
            items = take(name)
            if items:
                out.append(self.typed_list(name, items))
        sensors = take("sensorElementList")
        if sensors:
            out.append("sensorElementList" + "".join(sorted(self.sensor(s) for s in sensors)))
        ilmd = take("ilmd")
        if ilmd:
            out.append("ilmd" + self.extensions(ilmd, set()))
        out.append(self.extensions(event, known))
        return "".join(out)


def pre_hash(event: Mapping[str, Any], context: Any = None) -> str:
    """The canonical pre-hash string of one EPCIS 2.0 JSON-LD event (`context`: the document's `@context`)."""
    prefixes = namespaces(context)
    if "@context" in event:
        prefixes.update(namespaces(event["@context"]))
    return PreHash(prefixes).event(event)


def event_hash(event: Mapping[str, Any], context: Any = None) -> str:
    """The EPCIS event hash ID: `ni:///sha-256;{hex}?ver=CBV2.0`."""
    digest = hashlib.sha256(pre_hash(event, context).encode("utf-8")).hexdigest()
    return f"ni:///sha-256;{digest}?ver={VERSION}"
