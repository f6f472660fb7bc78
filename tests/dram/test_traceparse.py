"""The compiled request-trace parser against a plain-Python reading of the grammar (README, "Input file
formats"): a line is blank, a ``#`` comment, or ``LD``/``ST``, blanks, a decimal or ``0x`` address below
2^64 and optional trailing blanks; anything else is an error naming the first bad line."""

from __future__ import annotations

import re

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sieve._core import traceparse

_REQUEST = re.compile(rb"(LD|ST)[ \t]+(0[xX][0-9a-fA-F]+|[0-9]+)[ \t\r]*")


def reference(data: bytes):
    """(is_write, addr, line) lists, or ("error", line number, line text)."""
    out = ([], [], [])
    for number, raw in enumerate(data.split(b"\n"), start=1):
        body = raw.lstrip(b" \t")
        if not body or body[:1] in (b"\r", b"#"):
            continue
        m = _REQUEST.fullmatch(body)
        value = int(m.group(2), 0) if m and m.group(2)[:2].lower() == b"0x" else int(m.group(2)) if m else None
        if value is None or value >= 2 ** 64:
            return "error", number, raw.decode("utf-8", "replace").rstrip("\r")
        out[0].append(int(m.group(1) == b"ST"))
        out[1].append(value)
        out[2].append(number)
    return out


def compiled(data: bytes):
    try:
        w, a, line = traceparse.parse(data)
    except ValueError as e:
        return ("error", *e.args)
    assert (w.dtype, a.dtype) == (np.uint8, np.uint64)
    if line is None:  # the numbers are 1 .. n
        line = np.arange(1, len(a) + 1)
    else:
        assert line.dtype == np.int64 and list(line) != list(range(1, len(a) + 1))
    return [int(x) for x in w], [int(x) for x in a], [int(x) for x in line]


EDGES = [
    b"", b"\n", b"LD 0", b"ST 0x0\n", b"LD 18446744073709551615", b"LD 18446744073709551616",
    b"LD 18446744073709551619", b"LD 18446744073709551610\n", b"LD 0xffffffffffffffff", b"LD 0x10000000000000000",
    b"LD 0x00000000000000000000001", b"LD 000000000000000000000000018446744073709551615", b"LD 0x", b"LD 0X1F\r\n",
    b"LD 0xaBcDeF", b"LD\t\t7 \t\r", b"  # LD 5\nST 5", b"\r\nLD 1", b"LD 1\r\r", b"LD 1 2", b"LD1", b"LD", b"L",
    b"ld 5", b"LD 0xg", b"LD 12a", b"LD 0x1\n\n\nST 12\n#\n", b"ST 5\nXX 1\n", b"LD 5\x00",
]


@pytest.mark.parametrize("data", EDGES, ids=[repr(e)[2:-1][:30] or "empty" for e in EDGES])
def test_parser_follows_the_grammar_on_edge_cases(data):
    assert compiled(data) == reference(data)


_PIECES = st.sampled_from([b"LD", b"ST", b" ", b"\t", b"\r", b"\n", b"#", b"0x", b"0X", b"0", b"9", b"f", b"F",
                           b"g", b"18446744073709551615", b"ffffffffffffffff", b"LD 0x1f\n", b"ST 42\n", b"L"])


@settings(max_examples=300, deadline=None, derandomize=True, database=None, suppress_health_check=list(HealthCheck))
@given(st.lists(_PIECES, max_size=40).map(b"".join))
def test_parser_follows_the_grammar_on_random_text(data):
    assert compiled(data) == reference(data)


@settings(max_examples=100, deadline=None, derandomize=True, database=None, suppress_health_check=list(HealthCheck))
@given(st.lists(st.tuples(st.booleans(), st.integers(0, 2 ** 64 - 1), st.booleans()), min_size=1, max_size=200))
def test_parser_reads_every_valid_request(requests):
    data = b"".join(b"%s %s\n" % (b"ST" if w else b"LD", (b"%#x" if hexa else b"%d") % a) for w, a, hexa in requests)
    assert compiled(data) == ([int(w) for w, _, _ in requests], [a for _, a, _ in requests],
                              list(range(1, len(requests) + 1)))
