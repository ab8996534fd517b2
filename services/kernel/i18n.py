"""The platform's languages: gettext catalogs (Babel), the choice by `Accept-Language`, and localised problem texts.

Languages: Vietnamese (`vi`), English (`en`, the language of the source: it needs no catalog) and Simplified Chinese
(`zh_Hans`). A catalog is a `.po` file under `<package>/locale/<lang>/LC_MESSAGES/<domain>.po`; it is compiled in
memory the first time a process needs it (Babel's `write_mo`, a few milliseconds), so there is no `.mo` to build,
ship or let go stale: what is committed is what runs, from a checkout, `make setup` or the image alike.

Problem texts (RFC 9457 `title` and `detail`) keep being written in English where they are raised; the `problems`
domain of this package translates them when the client asks for another language. A detail built with an f-string
(`f"gate event {event_id} not found"`) is found by its template: `pybabel extract` runs `extract_problems` below
over services/ and api/, which turns every f-string raised as an AppError into a python-format msgid
(`gate event %(event_id)s not found`); at run time the English detail is matched against those templates and the
values it carried are put into the translation. A text no template matches (an exception's own message) stays
English. The problem's `code` and `type` never change with the language.

docs/i18n.md tells how to add a string or a language.
"""

from __future__ import annotations

import ast
import functools
import io
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from gettext import NullTranslations
from pathlib import Path
from typing import Any

LANGUAGES = ("vi", "en", "zh_Hans")
SOURCE_LANGUAGE = "en"
# BCP 47 tags, for <html lang> and Content-Language.
TAGS = {"vi": "vi", "en": "en", "zh_Hans": "zh-Hans"}
# The first subtag of an Accept-Language range → our language. Every Chinese range gets Simplified Chinese (the
# script of the traders across the border at Hà Khẩu): closer to a zh-TW reader than English is.
_PRIMARY = {"vi": "vi", "en": "en", "zh": "zh_Hans"}

LOCALE_DIR = Path(__file__).resolve().parent / "locale"
PROBLEMS = "problems"


def N_(message: str) -> str:
    """Mark a string for extraction; it is translated where it is shown."""
    return message


def negotiate(accept_language: str | None, default: str) -> str:
    """The language an `Accept-Language` header prefers among ours (RFC 9110 §12.5.4: q-values, order breaks ties),
    or `default` when it names none of them (or is absent, or says only `*`)."""
    if not accept_language:
        return default
    ranked: list[tuple[float, int, str]] = []
    for position, item in enumerate(accept_language[:1000].split(",")):
        tag, _, params = item.strip().partition(";")
        quality = 1.0
        for param in params.split(";"):
            name, _, value = param.strip().partition("=")
            if name.strip().lower() == "q":
                try:
                    quality = float(value)
                except ValueError:
                    quality = 0.0
        language = _PRIMARY.get(tag.strip().lower().replace("_", "-").split("-")[0])
        if language and quality > 0:
            ranked.append((-quality, position, language))
    return min(ranked)[2] if ranked else default


def language_of(value: str | None, default: str) -> str:
    """One of LANGUAGES from a stored choice (`vi`, `en`, `zh`, `zh-Hans`, `zh_Hans`...), else `default`."""
    if not value:
        return default
    return _PRIMARY.get(value.strip().lower().replace("_", "-").split("-")[0], default)


@dataclass(frozen=True)
class Catalog:
    """One domain in one language: gettext translations plus the templates of its python-format messages."""

    translations: NullTranslations
    templates: tuple[tuple[re.Pattern[str], str], ...]

    def gettext(self, message: str) -> str:
        return self.translations.gettext(message)

    def ngettext(self, singular: str, plural: str, n: int) -> str:
        return self.translations.ngettext(singular, plural, n)

    def pgettext(self, context: str, message: str) -> str:
        return self.translations.pgettext(context, message)

    def localise(self, text: str) -> str:
        """A text written in English, in this catalog's language: its own translation, or the translation of the
        first template it fits with the values it carried; itself if neither."""
        if not text:
            return text
        translated = self.translations.gettext(text)
        if translated != text or len(text) > MAX_TEMPLATE_TEXT:
            return translated
        for pattern, msgid in self.templates:
            found = pattern.fullmatch(text)
            if found is None:
                continue
            translated = self.translations.gettext(msgid)
            if translated == msgid:
                return text
            values = {name: value for name, value in found.groupdict().items() if value is not None}
            try:
                return translated % values
            except (KeyError, ValueError, TypeError):  # a catalog entry with broken placeholders: keep the English
                return text
        return text


_PLACEHOLDER = re.compile(r"%\((\w+)\)[sdr]")
# Longer texts are not matched against templates (they stay English): a template's lazy groups backtrack, and a
# detail can carry a caller's input; our details are a sentence or two.
MAX_TEMPLATE_TEXT = 1000


def template_pattern(msgid: str) -> re.Pattern[str] | None:
    """A regex that matches what `msgid % values` renders, with one named group per placeholder (None when the
    message has no placeholder)."""
    parts = _PLACEHOLDER.split(msgid)
    if len(parts) == 1:
        return None
    seen: set[str] = set()
    regex = []
    for index, part in enumerate(parts):
        if index % 2 == 0:
            regex.append(re.escape(part.replace("%%", "%")))
        elif part in seen:
            regex.append(f"(?P={part})")
        else:
            seen.add(part)
            regex.append(f"(?P<{part}>.*?)")
    return re.compile("".join(regex), re.DOTALL)


def po_path(locale_dir: Path, language: str, domain: str) -> Path:
    return locale_dir / language / "LC_MESSAGES" / f"{domain}.po"


@functools.cache
def catalog(locale_dir: Path, domain: str, language: str) -> Catalog:
    """The domain's catalog in `language`, compiled from its .po once per process (English: the msgids)."""
    from babel.messages.mofile import write_mo
    from babel.messages.pofile import read_po
    from babel.support import Translations

    path = po_path(locale_dir, language, domain)
    if language == SOURCE_LANGUAGE or not path.exists():
        return Catalog(NullTranslations(), ())
    with path.open("rb") as handle:
        messages = read_po(handle, locale=language, domain=domain)
    compiled = io.BytesIO()
    write_mo(compiled, messages, use_fuzzy=False)
    compiled.seek(0)
    templates = []
    for message in messages:
        if isinstance(message.id, str) and message.id and message.string and not message.fuzzy:
            pattern = template_pattern(message.id)
            if pattern is not None:
                templates.append((pattern, message.id))
    # The most specific first: more literal text, then fewer placeholders.
    templates.sort(key=lambda t: (-len(_PLACEHOLDER.sub("", t[1])), t[1]))
    return Catalog(Translations(compiled, domain=domain), tuple(templates))


def problem_catalog(language: str) -> Catalog:
    return catalog(LOCALE_DIR, PROBLEMS, language)


def localise_problem(body: dict[str, Any], language: str) -> dict[str, Any]:
    """A problem+json body with `title`, `detail` and each `errors[]` item's `detail` in `language` (the other
    members, `code` and `pointer` first, unchanged)."""
    if language == SOURCE_LANGUAGE:
        return body
    texts = problem_catalog(language)
    for member in ("title", "detail"):
        if isinstance(body.get(member), str):
            body[member] = texts.localise(body[member])
    errors = body.get("errors")
    if isinstance(errors, list):
        body["errors"] = [
            {**item, "detail": texts.localise(item["detail"])}
            if isinstance(item, dict) and isinstance(item.get("detail"), str)
            else item
            for item in errors
        ]
    return body


# ---- extraction (pybabel extract -F services/kernel/locale/babel.cfg) -------------------------------------------

# Where a problem's English text is written: raised, passed to problem(), or set as a class's title.
_TEXT_CALLS = {"problem", "database_unavailable", "N_"}


def _placeholder(node: ast.expr) -> str:
    """A readable placeholder name for an f-string's expression (`{event_id[:64]}` → event_id)."""
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return node.attr
    if isinstance(node, ast.Subscript):
        return _placeholder(node.value)
    if isinstance(node, ast.Call) and node.args:
        return _placeholder(node.args[0])
    if isinstance(node, ast.BoolOp):
        return _placeholder(node.values[0])
    return "value"


def text_template(node: ast.expr) -> str | None:
    """The msgid of a string literal or an f-string (placeholders `%(name)s`), None for anything else."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
        # "text (" + "; ".join(x) + ") text": the literal parts, and a placeholder for each other operand
        operands = []
        while isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
            operands.append(node.right)
            node = node.left
        operands.append(node)
        joined = ast.JoinedStr(
            [o if isinstance(o, ast.Constant) else ast.FormattedValue(o, -1, None) for o in reversed(operands)]
        )
        if not any(isinstance(o, ast.Constant) and isinstance(o.value, str) for o in operands):
            return None
        node = joined
    if not isinstance(node, ast.JoinedStr):
        return None
    out, used = [], set()
    for value in node.values:
        if isinstance(value, ast.Constant):
            out.append(str(value.value).replace("%", "%%"))
        elif isinstance(value, ast.FormattedValue):
            name = _placeholder(value.value)
            base, n = name, 1
            while name in used and ast.unparse(value.value) not in used:
                n += 1
                name = f"{base}{n}"
            used.add(name)
            out.append(f"%({name})s")
    return "".join(out)


def _problem_classes(tree: ast.Module, known: set[str]) -> set[str]:
    """Names of classes in `tree` that derive (directly or through `known`) from AppError."""
    found = set(known)
    changed = True
    while changed:
        changed = False
        for node in ast.walk(tree):
            if isinstance(node, ast.ClassDef) and node.name not in found:
                bases = {b.id if isinstance(b, ast.Name) else getattr(b, "attr", "") for b in node.bases}
                if bases & found:
                    found.add(node.name)
                    changed = True
    return found


# Every AppError subclass name in the code base (the extractor sees one file at a time).
PROBLEM_BASES = {
    "AppError",
    "NotFound",
    "Unauthorized",
    "Forbidden",
    "Conflict",
    "PreconditionFailed",
    "PreconditionRequired",
    "Unprocessable",
    "PayloadTooLarge",
    "ServiceUnavailable",
    "InsufficientStorage",
}


def problem_texts(source: str) -> Iterator[tuple[int, str]]:
    """(line, msgid) of every problem title and detail written in `source`."""
    tree = ast.parse(source)
    classes = _problem_classes(tree, PROBLEM_BASES)
    constants = _module_constants(tree)
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            callee = node.func.id if isinstance(node.func, ast.Name) else getattr(node.func, "attr", "")
            if callee in classes or callee in _TEXT_CALLS:
                args: Iterable[ast.expr] = node.args
            elif callee == "PydanticCustomError":
                args = node.args[1:2]  # (code, message): the message is a text of errors[] items
            elif callee == "__init__" and _in_problem_class(tree, node, classes):
                args = node.args[:1]
            else:
                continue
            for arg in args:
                if isinstance(arg, ast.Name) and arg.id in constants:
                    arg = constants[arg.id]
                yield from _texts_in(arg)
            for keyword in node.keywords:
                if keyword.arg in ("title", "detail"):
                    yield from _texts_in(keyword.value)
        elif isinstance(node, ast.ClassDef) and node.name in classes:
            yield from _class_titles(node)
        elif isinstance(node, ast.Dict) and _is_titles(tree, node):
            for value in node.values:
                yield from _texts_in(value)


def _module_constants(tree: ast.Module) -> dict[str, ast.expr]:
    """`NAME = "text"` assignments (a detail raised by name, e.g. `raise Unauthorized(ENDED)`), a module's or a
    function's."""
    out: dict[str, ast.expr] = {}
    for statement in ast.walk(tree):
        if isinstance(statement, ast.Assign) and len(statement.targets) == 1:
            target = statement.targets[0]
            value = statement.value
            if isinstance(target, ast.Name) and (text_template(value) is not None or isinstance(value, ast.IfExp)):
                out.setdefault(target.id, value)
    return out


def _texts_in(node: ast.expr) -> Iterator[tuple[int, str]]:
    if isinstance(node, ast.IfExp):
        yield from _texts_in(node.body)
        yield from _texts_in(node.orelse)
        return
    if isinstance(node, ast.BoolOp):
        for value in node.values:
            yield from _texts_in(value)
        return
    text = text_template(node)
    # Text to translate, not only placeholders and punctuation ("%(name)s: %(message)s" stays as it is).
    if text and any(c.isalpha() for c in _PLACEHOLDER.sub("", text)):
        yield node.lineno, text


def _in_problem_class(tree: ast.Module, call: ast.Call, classes: set[str]) -> bool:
    for node in ast.walk(tree):
        if isinstance(node, ast.ClassDef) and node.name in classes:
            if any(inner is call for inner in ast.walk(node)):
                return True
    return False


def _class_titles(node: ast.ClassDef) -> Iterator[tuple[int, str]]:
    for statement in node.body:
        if not isinstance(statement, ast.Assign):
            continue
        for target in statement.targets:
            if isinstance(target, ast.Name) and target.id in ("title", "detail"):
                yield from _texts_in(statement.value)
            elif isinstance(target, ast.Tuple) and isinstance(statement.value, ast.Tuple):
                for name, value in zip(target.elts, statement.value.elts, strict=False):
                    if isinstance(name, ast.Name) and name.id == "title":
                        yield from _texts_in(value)
        # Details assigned to a local before being raised (`detail = f"..."`).
    for inner in ast.walk(node):
        if isinstance(inner, ast.Assign) and any(isinstance(t, ast.Name) and t.id == "detail" for t in inner.targets):
            yield from _texts_in(inner.value)


def _is_titles(tree: ast.Module, node: ast.Dict) -> bool:
    for parent in ast.walk(tree):
        if isinstance(parent, ast.Assign) and parent.value is node:
            return any(isinstance(t, ast.Name) and t.id == "titles" for t in parent.targets)
    return False


def extract_problems(
    fileobj: Any, keywords: Any, comment_tags: Any, options: dict[str, Any]
) -> Iterator[tuple[int, str | None, str, list[str]]]:
    """A Babel extraction method (babel.cfg: `[services.kernel.i18n:extract_problems: **.py]`)."""
    source = fileobj.read().decode(options.get("encoding", "utf-8"))
    seen = set()
    for line, text in problem_texts(source):
        if (line, text) not in seen:
            seen.add((line, text))
            yield line, None, text, []
