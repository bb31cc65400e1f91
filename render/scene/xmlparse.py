"""Mitsuba XML to a line-numbered element tree (expat), with `<default>` handling and `$name` substitution."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Optional
from xml.parsers import expat

from .types import SceneError

_PARAM = re.compile(r"\$([A-Za-z_][A-Za-z0-9_]*)")


@dataclass
class Element:
    """One XML element: tag, attributes (after $param substitution), source line, child elements."""
    tag: str
    attrs: dict[str, str]
    line: int
    children: list["Element"] = field(default_factory=list)

    def describe(self) -> str:
        """`tag id="x" name="y" type="z"` with whichever of those attributes the element has."""
        parts = [self.tag] + [f'{k}="{self.attrs[k]}"' for k in ("id", "name", "type") if k in self.attrs]
        return " ".join(parts)


def error(file: str, el: Optional[Element], message: str, line: Optional[int] = None) -> SceneError:
    """A SceneError `<file>:<line>: <element>: message`, forced onto one line."""
    message = " ".join(str(message).split())
    if el is None:
        return SceneError(f"{file}:{line if line is not None else 1}: {message}")
    return SceneError(f"{file}:{el.line}: {el.describe()}: {message}")


def parse_xml(text: str | bytes, file: str) -> Element:
    """Parse XML into Elements with line numbers; malformed XML raises SceneError at the parser's line."""
    root: list[Element] = []
    stack: list[Element] = []
    parser = expat.ParserCreate()

    def start(tag, attrs):
        el = Element(tag, dict(attrs), parser.CurrentLineNumber)
        if stack:
            stack[-1].children.append(el)
        else:
            root.append(el)
        stack.append(el)

    def end(tag):
        stack.pop()

    def chars(data):
        if data.strip():
            el = stack[-1] if stack else None
            raise error(file, el, f"unexpected text {data.strip()[:30]!r} (Mitsuba XML has values in attributes)")

    parser.StartElementHandler = start
    parser.EndElementHandler = end
    parser.CharacterDataHandler = chars
    try:
        parser.Parse(text, True)
    except expat.ExpatError as e:
        reason = expat.ErrorString(e.code)
        raise SceneError(f"{file}:{e.lineno}: malformed XML: {reason} (column {e.offset + 1})") from None
    if not root:
        raise SceneError(f"{file}:1: malformed XML: no root element")
    return root[0]


def substitute(root: Element, params: dict[str, str], file: str) -> None:
    """Apply `<default name value>` (document order; user params win) and replace `$name` in attributes.

    Defaults are removed from the tree. A `$name` with no value raises SceneError, as Mitsuba does.
    """
    values = dict(params)

    def sub(el: Element, key: str, value: str) -> str:
        def repl(m):
            name = m.group(1)
            if name not in values:
                raise error(file, el, f"attribute {key}=\"{value}\" uses undefined parameter ${name} "
                                      f"(declare <default name=\"{name}\" value=\"...\"/> or pass it on load)")
            return values[name]
        return _PARAM.sub(repl, value)

    def walk(el: Element) -> None:
        kept = []
        for child in el.children:
            if child.tag == "default":
                for k in child.attrs:
                    if k not in ("name", "value"):
                        raise error(file, child, f"unexpected attribute '{k}' (expected name, value)")
                if "name" not in child.attrs or "value" not in child.attrs:
                    raise error(file, child, "needs both name=\"...\" and value=\"...\"")
                if child.children:
                    raise error(file, child, "must be empty")
                name = child.attrs["name"]
                if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name):
                    raise error(file, child, f"invalid parameter name {name!r} (letters, digits, _)")
                if name not in values:
                    values[name] = sub(child, "value", child.attrs["value"])
                continue
            child.attrs = {k: sub(child, k, v) for k, v in child.attrs.items()}
            walk(child)
            kept.append(child)
        el.children = kept

    root.attrs = {k: sub(root, k, v) for k, v in root.attrs.items()}
    walk(root)
