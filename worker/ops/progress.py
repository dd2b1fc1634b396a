"""A tiny progress bar for long commands (``replay``, ``demo``), drawn on stderr."""

from __future__ import annotations

import sys
from typing import TextIO


class Progress:
    """``label [############..................] 40/100`` on stderr.

    On a terminal it is redrawn in place at every update. Anywhere else (a log file, CI)
    a line is printed at each tenth of the way only, so logs are not flooded with redraws.
    """

    def __init__(
        self, total: int, label: str = "", *, width: int = 30, stream: TextIO | None = None
    ) -> None:
        self.total = max(total, 0)
        self.label = label
        self.done = 0
        self._width = width
        self._stream = stream if stream is not None else sys.stderr
        self._tty = self._stream.isatty()
        self._tenths = 0

    def update(self, done: int) -> None:
        """Record that ``done`` of the total are done, and redraw when it is due."""
        self.done = min(max(done, 0), self.total)
        if self.total == 0:
            return
        finished = self.done == self.total
        if self._tty:
            print(f"\r{self.render()}", end="\n" if finished else "", file=self._stream, flush=True)
            return
        tenths = self.done * 10 // self.total
        if tenths > self._tenths:
            self._tenths = tenths
            print(self.render(), file=self._stream, flush=True)

    def advance(self, count: int = 1) -> None:
        """``count`` more are done."""
        self.update(self.done + count)

    def render(self) -> str:
        """The bar as text, without line ending."""
        filled = self._width * self.done // self.total if self.total else self._width
        bar = "#" * filled + "." * (self._width - filled)
        prefix = f"{self.label} " if self.label else ""
        return f"{prefix}[{bar}] {self.done}/{self.total}"
