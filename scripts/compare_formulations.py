"""Where explicit loops beat matrix products, and where they lose, on this machine.

A grid of batch sizes × widths × dtypes; each backend in its own process; the
machine's matrix-product peak measured in the same run.  Writes a Markdown
table (stdout and ``table.md``), ``comparison.csv`` and ``ratio.png`` to an
output folder.  Same code as ``fastbp bench``.

Usage::

    python scripts/compare_formulations.py [--out comparison/] [--batches ...] [--widths ...] [--threads N]
"""

from __future__ import annotations

import argparse
import contextlib
import io
from pathlib import Path

from fastbp import bench


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    bench.add_arguments(p)
    p.add_argument("--out", default="comparison", help="output folder (default: comparison/)")
    p.set_defaults(dtypes=["float64", "float32"])
    args = p.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    args.csv = str(out / "comparison.csv")
    args.plot = args.plot or str(out / "ratio.png")
    buffer = io.StringIO()
    with contextlib.redirect_stdout(buffer):
        bench.run(args)
    text = buffer.getvalue()
    print(text, end="")
    (out / "table.md").write_text(text)
    print(f"table written to {out / 'table.md'}")


if __name__ == "__main__":
    main()
