"""tools/component.py: the stamp the host reads, and the import check the build relies on."""

import pathlib
import sys

import pytest

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1] / "tools"))
import component  # noqa: E402

HEADER = b"\0asm\x0d\x00\x01\x00"


def import_section(*names):
    body = component.uleb(len(names))
    for i, name in enumerate(names):
        body += b"\x00" + component.uleb(len(name)) + name.encode() + b"\x05" + component.uleb(i)
    return bytes([component.IMPORT]) + component.uleb(len(body)) + body


def test_leb128_round_trips():
    for n in (0, 1, 127, 128, 300, 2**20, 2**32 - 1):
        assert component.read_uleb(component.uleb(n), 0) == (n, len(component.uleb(n)))
    assert component.uleb(624485) == bytes([0xE5, 0x8E, 0x26])


def test_stamp_appends_one_top_level_custom_section():
    data = HEADER + import_section("tagbust:rules/log@0.1.0")
    stamped = component.stamp(data, "sdk=0.1.0;contract=0.1.0;language=python")
    assert stamped.startswith(data)
    tail = stamped[len(data):]
    # id 0, size, then the name and the payload, exactly as a wasm custom section.
    assert tail == b"\x00\x34\x0btagbust:sdksdk=0.1.0;contract=0.1.0;language=python"
    assert component.custom_sections(stamped) == [
        ("tagbust:sdk", b"sdk=0.1.0;contract=0.1.0;language=python")
    ]
    assert component.stamp(stamped, "sdk=0.1.0;contract=0.1.0;language=python") is stamped
    with pytest.raises(ValueError, match="already stamped"):
        component.stamp(stamped, "sdk=0.2.0;contract=0.1.0;language=python")


def test_imports_lists_the_top_level_names():
    data = HEADER + import_section("tagbust:rules/log@0.1.0", "wasi:io/streams@0.2.6")
    assert component.imports(data) == ["tagbust:rules/log@0.1.0", "wasi:io/streams@0.2.6"]


def test_refuses_what_is_not_a_component():
    with pytest.raises(ValueError, match="not a WebAssembly component"):
        component.imports(b"\0asm\x01\x00\x00\x00")
    with pytest.raises(ValueError, match="truncated"):
        component.imports(HEADER + b"\x0a\x10\x01")
