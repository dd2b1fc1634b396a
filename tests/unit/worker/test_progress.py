"""The progress bar of long commands: in place on a terminal, every tenth in a log."""

from __future__ import annotations

import io

from worker.ops.progress import Progress


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_a_log_gets_a_line_at_each_tenth_only() -> None:
    out = io.StringIO()
    bar = Progress(100, "replay", width=10, stream=out)
    for done in range(1, 101):
        bar.update(done)
    lines = out.getvalue().splitlines()
    assert len(lines) == 10
    assert lines[3] == "replay [####......] 40/100"
    assert lines[-1] == "replay [##########] 100/100"
    assert "\r" not in out.getvalue()


def test_a_terminal_is_redrawn_in_place_and_the_line_ended_once_done() -> None:
    out = Terminal()
    bar = Progress(4, width=4, stream=out)
    bar.advance()
    bar.advance(2)
    assert out.getvalue() == "\r[#...] 1/4\r[###.] 3/4"
    bar.advance()
    assert out.getvalue().endswith("\r[####] 4/4\n")


def test_counts_beyond_the_total_and_an_empty_total_are_harmless() -> None:
    out = io.StringIO()
    bar = Progress(3, stream=out, width=3)
    bar.update(7)
    assert bar.done == 3
    assert out.getvalue() == "[###] 3/3\n"
    empty = Progress(0, stream=out)
    empty.update(1)
    assert empty.render().endswith("0/0")
