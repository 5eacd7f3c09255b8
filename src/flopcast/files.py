"""Reading users' files (config.json, YAML entries, calibrations) safely.

Every reader turns a missing, unreadable, binary, mis-encoded, malformed, hostile (huge,
deeply nested, alias-bombed) or wrongly shaped file into one :class:`FlopcastError` naming the
file and what is wrong, so the command line prints one line and exits with status 2.

Encodings: UTF-8 with or without a byte-order mark, and UTF-16/UTF-32 with one (editors on
Windows write those); anything else that is not UTF-8 is refused as binary.
"""

from __future__ import annotations

import codecs
import json
import re
from pathlib import Path
from typing import Any

import yaml

from flopcast.errors import FlopcastError

#: Largest file read (bytes). A model config or a catalog entry is a few KiB; 16 MiB leaves
#: room for generated calibrations and refuses what would only exhaust memory.
MAX_FILE_BYTES = 16 * 2**20
#: Deepest nesting accepted. Real entries nest 3-4 levels (families → engine → efficiency).
MAX_NESTING = 32
#: Most containers and scalars a parsed file may hold, counting every alias expansion: YAML
#: anchors can make a small file stand for billions of nodes ("billion laughs").
MAX_NODES = 1_000_000

_BOMS = ((codecs.BOM_UTF32_LE, "utf-32"), (codecs.BOM_UTF32_BE, "utf-32"),
         (codecs.BOM_UTF8, "utf-8-sig"), (codecs.BOM_UTF16_LE, "utf-16"),
         (codecs.BOM_UTF16_BE, "utf-16"))


def _oneline(exc: BaseException) -> str:
    return " ".join(str(exc).split())[:300]


def read_text(path: str | Path, what: str, max_bytes: int = MAX_FILE_BYTES,
              allowed: str = "a text file") -> str:
    """The text of ``path``; ``what`` names the option or role in error messages and
    ``allowed`` what the file should be."""
    p = Path(path).expanduser()
    try:
        if not p.exists():
            raise FlopcastError(f"{what}: file not found: {p}")
        if p.is_dir():
            raise FlopcastError(f"{what}: {p} is a directory, not a file (allowed: {allowed})")
        with p.open("rb") as f:  # read at most max_bytes + 1: devices and FIFOs report size 0
            raw = f.read(max_bytes + 1)
        if len(raw) > max_bytes:
            raise FlopcastError(f"{what}: {p} is over {max_bytes:,} bytes; at most that is read")
    except OSError as e:
        raise FlopcastError(f"{what}: cannot read {_short(p)}: {e.strerror or _oneline(e)}") \
            from None
    encoding = next((enc for bom, enc in _BOMS if raw.startswith(bom)), "utf-8")
    try:
        text = raw.decode(encoding)
    except UnicodeDecodeError as e:
        line = raw[:e.start].count(b"\n") + 1
        raise FlopcastError(
            f"{what}: {p}: line {line}: byte 0x{raw[e.start]:02x} is not UTF-8 text (allowed: "
            f"{allowed} in UTF-8, or UTF-16/32 with a byte-order mark)") from None
    nul = text.find("\0")
    if nul >= 0:
        line = text.count("\n", 0, nul) + 1
        raise FlopcastError(f"{what}: {p}: line {line}: NUL character: a binary file "
                            f"(allowed: {allowed})")
    return text


def _short(p: Path) -> str:
    text = str(p)
    return text if len(text) <= 80 else text[:60] + "…" + text[-19:]


def check_shape(data: Any, where: str) -> None:
    """Refuse nesting deeper than MAX_NESTING or more than MAX_NODES nodes (aliases counted
    each time they are used), walking iteratively so that no input can exhaust the stack."""
    stack, nodes = [(data, 1)], 0
    while stack:
        node, depth = stack.pop()
        nodes += 1
        if nodes > MAX_NODES:
            raise FlopcastError(f"{where}: more than {MAX_NODES:,} values (expanded aliases "
                                "included); not a flopcast file")
        if depth > MAX_NESTING:
            raise FlopcastError(f"{where}: nested deeper than {MAX_NESTING} levels; not a "
                                "flopcast file")
        if isinstance(node, dict):
            stack.extend((v, depth + 1) for v in node.values())
            stack.extend((k, depth + 1) for k in node if isinstance(k, (tuple, list)))
        elif isinstance(node, (list, tuple)):
            stack.extend((v, depth + 1) for v in node)


_KINDS = {type(None): "empty (or null)", list: "a list", str: "a string", int: "a number",
          float: "a number", bool: "true/false"}


def _mapping(data: Any, where: str, kind: str, allow_empty: bool) -> dict:
    if data is None and allow_empty:
        return {}
    if not isinstance(data, dict):
        got = _KINDS.get(type(data), f"a {type(data).__name__}")
        raise FlopcastError(f"{where}: expected {kind} (a mapping of fields); the file is {got}")
    check_shape(data, where)
    return data


#: PyYAML's libyaml parser where PyYAML was built with it: the same safe constructor, ~6x
#: faster. Only for the files shipped in the package (``tests/test_catalog.py`` checks that
#: each parses to the same data with both parsers); a user's file goes through
#: ``yaml.safe_load`` and its error messages.
_SHIPPED_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def load_shipped_yaml(path: Path) -> Any:
    """A YAML file shipped in the package (catalog, calibration): ``yaml.safe_load``'s
    result."""
    return yaml.load(path.read_text(), Loader=_SHIPPED_LOADER)  # noqa: S506 (a safe loader)


def load_yaml_mapping(path: str | Path, what: str, kind: str = "a YAML mapping",
                      allow_empty: bool = False) -> dict:
    """A YAML file that must hold a mapping (``yaml.safe_load`` only: no object tags)."""
    text = read_text(path, what)
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        at = f" (line {mark.line + 1}, column {mark.column + 1})" if mark else ""
        problem = getattr(e, "problem", None) or _oneline(e)
        raise FlopcastError(f"{what}: {path} is not valid YAML{at}: {problem}") from None
    except RecursionError:
        raise FlopcastError(f"{what}: {path} is nested too deeply") from None
    except (ValueError, TypeError, OverflowError) as e:  # e.g. a date such as 2020-02-30
        raise FlopcastError(f"{what}: {path}: a value YAML cannot read ({_oneline(e)})") \
            from None
    return _mapping(data, f"{what}: {path}", kind, allow_empty)


def load_json_mapping(path: str | Path, what: str, kind: str = "a JSON object") -> dict:
    """A JSON file that must hold an object; NaN and Infinity literals are refused."""
    text = read_text(path, what)

    def _no_constant(name: str):
        raise ValueError(f"{name} is not a number JSON allows")

    try:
        data = json.loads(text, parse_constant=_no_constant)
    except json.JSONDecodeError as e:
        raise FlopcastError(f"{what}: {path} is not valid JSON (line {e.lineno}, column "
                            f"{e.colno}): {e.msg}") from None
    except ValueError as e:  # NaN/Infinity, or an integer too long to convert
        raise FlopcastError(f"{what}: {path} is not valid JSON: {_oneline(e)}") from None
    except RecursionError:
        raise FlopcastError(f"{what}: {path} is nested too deeply") from None
    return _mapping(data, f"{what}: {path}", kind, allow_empty=False)


def path_exists(ref: str) -> bool:
    """Whether ``ref`` names an existing path; names the OS refuses (too long, NUL) do not."""
    try:
        return Path(ref).expanduser().exists()
    except (OSError, ValueError):
        return False


#: What a column name looks like; anything else in a header is not echoed back (the file may
#: be any file the caller could name, e.g. through the web API).
COLUMN_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_ .()-]{0,40}")


def column_names_shown(columns: list[str]) -> str:
    """The header's names for an error message: names only, others counted."""
    names = [c for c in columns if c and COLUMN_NAME.fullmatch(c)]
    hidden = sum(1 for c in columns if c and not COLUMN_NAME.fullmatch(c))
    return ", ".join(names + ([f"{hidden} unreadable"] if hidden else [])) or "(none)"
