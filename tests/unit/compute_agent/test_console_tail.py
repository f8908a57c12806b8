"""The console log's cut (``console.tail``): Nova's ``'\\n'.join(log.split('\\n')[-length:])``."""

from __future__ import annotations

import pytest

from services.compute_agent.console import tail

LOG = "one\ntwo\nthree\n"


@pytest.mark.parametrize(("length", "cut"), [
    (None, LOG),
    (0, ""),
    (1, ""),  # the empty piece after the last newline
    (2, "three\n"),
    (3, "two\nthree\n"),
    (4, LOG),
    (100, LOG),
])
def test_a_log_ending_in_a_newline_gives_one_line_fewer(length, cut):
    assert tail(LOG, length) == cut


@pytest.mark.parametrize(("length", "cut"), [(1, "three"), (2, "two\nthree"), (5, "one\ntwo\nthree")])
def test_a_log_cut_mid_line_gives_the_partial_line_as_the_last_piece(length, cut):
    assert tail("one\ntwo\nthree", length) == cut


def test_only_a_line_feed_splits():
    text = "a\r\nb\rc\x0bd\u2028e\n"
    assert tail(text, 2) == "b\rc\x0bd\u2028e\n"
    assert tail(text, 3) == text


def test_an_empty_log_stays_empty():
    assert tail("", 1) == "" and tail("", 0) == ""
