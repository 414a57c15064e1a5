"""One table for the scale benchmarks: figure, target, launchbay, reference, ratio, met.

Every ``bench_*`` script of issue 18 prints its rows with ``row()``; ``bash bench/run_scale.sh``
prints ``header()`` once above them, so the scripts' output reads as one table.
"""

from __future__ import annotations

import sys

WIDTHS = (46, 22, 13, 22, 9, 7)


def header() -> str:
    cols = ("figure", "target", "launchbay", "reference", "ratio", "met")
    return "  ".join(c.ljust(w) if i in (0, 1, 3) else c.rjust(w) for i, (c, w) in enumerate(zip(cols, WIDTHS)))


def ms(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    return f"{seconds * 1000:,.1f} ms" if seconds < 10 else f"{seconds:,.1f} s"


def row(
    figure: str,
    target: str,
    ours: str,
    reference: str = "",
    ratio: float | None = None,
    met: bool | None = None,
) -> None:
    """One line; ``ratio`` is how many times the reference's cost launchbay's is (or a share, for rates)."""
    ratio_text = "" if ratio is None else (f"{ratio:,.0f}x" if ratio >= 10 else f"{ratio:,.2f}x")
    met_text = "" if met is None else ("yes" if met else "MISSED")
    cells = (figure, target, ours, reference, ratio_text, met_text)
    print(
        "  ".join(c.ljust(w) if i in (0, 1, 3) else c.rjust(w) for i, (c, w) in enumerate(zip(cells, WIDTHS))),
        flush=True,
    )


if __name__ == "__main__":
    print(header() if "--header" in sys.argv else "")
    print("-" * (sum(WIDTHS) + 2 * (len(WIDTHS) - 1)))
