"""The per-row table of `flopcast validate`, readable at any terminal width.

Wide terminals get one table (id, metric, measured, predicted, error). Narrow ones (an 80-column
terminal cut ids to "MEGATRON_README_202…" and wrapped a skipped row's reason onto 7 lines) get
one table per metric, the metric in the title and dropped from ids that end with it, ids folded
rather than cut. Either way a skipped row says "skipped [n]" and the reasons are listed once
under the table.
"""

from __future__ import annotations

from collections import defaultdict

from rich.markup import escape
from rich.table import Table
from rich.text import Text

#: From this width on, the single wide table fits without cutting ids.
WIDE = 120


def _fmt(v) -> str:
    return "—" if v is None else f"{v:,.4g}"


def _error_cell(row: dict, reasons: dict[str, int]) -> str:
    """'+3.8%' for a predicted row, 'skipped [n]' (n numbering its reason) for the others."""
    if row["predicted"] is None:
        reason = row.get("skipped") or "no prediction"
        reasons.setdefault(reason, len(reasons) + 1)
        return f"skipped [{reasons[reason]}]"
    error_pct = round(100 * (row["predicted"] / row["measured"] - 1), 1)
    return f"{error_pct + 0.0:+.1f}%"  # + 0.0: -0.04 % rounds to 0.0, not "-0.0"


def _table(title: str, with_metric: bool) -> Table:
    table = Table(title=title)
    table.add_column("id", overflow="fold")
    if with_metric:
        table.add_column("metric", overflow="fold")
    for col in ("measured", "predicted", "error"):
        table.add_column(col, justify="right", no_wrap=True)
    return table


def validation_tables(result: dict, name: str, width: int) -> list:
    """Renderables for `console.print`, one after the other: the row table(s) of a
    validate_file ``result`` for file ``name``, then the numbered skip reasons."""
    reasons: dict[str, int] = {}
    if width >= WIDE:
        table = _table(escape(f"{name}: {result['kind']} rows"), with_metric=True)
        for r in result["rows"]:
            table.add_row(Text(r["id"]), Text(r["metric"]), _fmt(r["measured"]),
                          _fmt(r["predicted"]),
                          _error_cell(r, reasons))
        tables = [table]
    else:
        by_metric: dict[str, list[dict]] = defaultdict(list)
        for r in result["rows"]:
            by_metric[r["metric"]].append(r)
        tables = []
        for metric, rows in by_metric.items():
            noun = "row" if len(rows) == 1 else "rows"
            table = _table(escape(f"{name}: {metric} ({len(rows)} {noun})"), with_metric=False)
            for r in rows:
                table.add_row(Text(r["id"].removesuffix(f":{metric}")), _fmt(r["measured"]),
                              _fmt(r["predicted"]), _error_cell(r, reasons))
            tables.append(table)
    notes = [Text(f"[{n}] {reason}") for reason, n in reasons.items()]
    return [*tables, *notes]
