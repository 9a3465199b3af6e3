"""Line lengths against RFC 5322's 998 bytes, however the bytes come in pieces."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from mailsink.parsing.lines import MAX_LINE, LineMeter, line_warnings


def long_lines(data: bytes) -> list[int]:
    """The lengths of the lines over the limit, the obvious way: split at LF, and drop one
    CR before it."""
    lines = data.split(b"\n")
    ended = [line.removesuffix(b"\r") for line in lines[:-1]] + lines[-1:]
    return [len(line) for line in ended if len(line) > MAX_LINE]


pieces = st.sampled_from([b"\r\n", b"\n", b"\r", b"x", b"x" * 499, b"x" * 998, b"\xff"])


@settings(max_examples=300, deadline=None)
@given(data=st.lists(pieces, max_size=12).map(b"".join), cuts=st.data())
def test_the_meter_counts_long_lines_wherever_the_pieces_are_cut(
    data: bytes, cuts: st.DataObject
) -> None:
    points = sorted(cuts.draw(st.lists(st.integers(0, len(data)), max_size=5)))
    meter = LineMeter()
    for start, end in zip([0, *points], [*points, len(data)], strict=True):
        meter.feed(data[start:end])
    meter.finish()
    expected = long_lines(data)
    assert (meter.long_lines, meter.longest) == (len(expected), max(expected, default=0))
    assert bool(line_warnings(data)) is bool(expected)
