"""Build-time helpers for Python rule components: the SDK stamp, and what a component imports.

Used by scripts/build-python-rules.sh; never part of a component. Reads only the top level of a
component binary (the level the host reads the stamp from and links imports at).

    python3 component.py stamp FILE TEXT    append the `tagbust:sdk` custom section
    python3 component.py imports FILE       print the top-level import names, one a line
    python3 component.py sections FILE      print the top-level custom section names
"""

import sys
from typing import Iterator, List, Tuple

MAGIC = b"\0asm"
COMPONENT_VERSION = b"\x0d\x00\x01\x00"  # version 0x0d, layer 1: a component
CUSTOM, IMPORT = 0, 10
STAMP_SECTION = "tagbust:sdk"


def uleb(n: int) -> bytes:
    out = bytearray()
    while True:
        byte = n & 0x7F
        n >>= 7
        if n:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def read_uleb(data: bytes, at: int) -> Tuple[int, int]:
    result = shift = 0
    while True:
        if at >= len(data):
            raise ValueError("truncated LEB128")
        byte = data[at]
        at += 1
        result |= (byte & 0x7F) << shift
        if byte < 0x80:
            return result, at
        shift += 7
        if shift > 35:
            raise ValueError("LEB128 longer than a u32")


def read_name(data: bytes, at: int) -> Tuple[str, int]:
    n, at = read_uleb(data, at)
    if at + n > len(data):
        raise ValueError("truncated name")
    return data[at : at + n].decode("utf-8"), at + n


def custom_section(name: str, payload: bytes) -> bytes:
    """id 0, the u32 size, then the name (length-prefixed UTF-8) and the payload."""
    body = uleb(len(name.encode())) + name.encode() + payload
    return bytes([CUSTOM]) + uleb(len(body)) + body


def sections(data: bytes) -> Iterator[Tuple[int, bytes]]:
    """The top-level sections of a component: (id, contents)."""
    if data[:4] != MAGIC or data[4:8] != COMPONENT_VERSION:
        raise ValueError("not a WebAssembly component (wrong magic, version or layer)")
    at = 8
    while at < len(data):
        sid = data[at]
        size, body = read_uleb(data, at + 1)
        if body + size > len(data):
            raise ValueError(f"section {sid} at byte {at} is truncated")
        yield sid, data[body : body + size]
        at = body + size


def custom_sections(data: bytes) -> List[Tuple[str, bytes]]:
    out = []
    for sid, body in sections(data):
        if sid == CUSTOM:
            name, at = read_name(body, 0)
            out.append((name, body[at:]))
    return out


def imports(data: bytes) -> List[str]:
    """Names of the component's top-level imports (`tagbust:rules/log@0.1.0`, ...)."""
    names = []
    for sid, body in sections(data):
        if sid != IMPORT:
            continue
        count, at = read_uleb(body, 0)
        for _ in range(count):
            tag = body[at]
            if tag not in (0x00, 0x01):
                raise ValueError(f"unknown import name form 0x{tag:02x}")
            name, at = read_name(body, at + 1)
            if tag == 0x01:  # a version suffix follows the name
                _, at = read_name(body, at)
            names.append(name)
            at = _skip_externdesc(body, at)
    return names


def _skip_externdesc(body: bytes, at: int) -> int:
    sort = body[at]
    at += 1
    if sort == 0x00:  # core module: 0x11 typeidx
        return read_uleb(body, at + 1)[1]
    if sort in (0x01, 0x04, 0x05):  # func, component, instance: typeidx
        return read_uleb(body, at)[1]
    if sort == 0x03:  # type: eq typeidx | sub resource
        return read_uleb(body, at + 1)[1] if body[at] == 0x00 else at + 1
    if sort == 0x02:  # value: eq valueidx | a value type
        if body[at] == 0x00:
            return read_uleb(body, at + 1)[1]
        t = body[at + 1]
        return at + 2 if 0x64 <= t <= 0x7F else _skip_sleb(body, at + 1)
    raise ValueError(f"unknown import kind 0x{sort:02x}")


def _skip_sleb(body: bytes, at: int) -> int:
    while body[at] & 0x80:
        at += 1
    return at + 1


def stamp(data: bytes, text: str) -> bytes:
    """``data`` with the SDK stamp appended as a top-level custom section. Stamping again with
    the same text changes nothing; a different stamp already there is an error."""
    payload = text.encode()
    found = [p for n, p in custom_sections(data) if n == STAMP_SECTION]
    if found:
        if found == [payload]:
            return data
        raise ValueError(f"already stamped differently: {found!r}")
    return data + custom_section(STAMP_SECTION, payload)


def main(argv: List[str]) -> int:
    if len(argv) >= 3 and argv[1] == "stamp" and len(argv) == 4:
        path, text = argv[2], argv[3]
        with open(path, "rb") as f:
            data = f.read()
        stamped = stamp(data, text)
        if stamped is not data:
            with open(path, "wb") as f:
                f.write(stamped)
        return 0
    if len(argv) == 3 and argv[1] in ("imports", "sections"):
        with open(argv[2], "rb") as f:
            data = f.read()
        names = imports(data) if argv[1] == "imports" else [n for n, _ in custom_sections(data)]
        print("\n".join(names))
        return 0
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
