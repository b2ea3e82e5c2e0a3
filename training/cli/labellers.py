"""``sursmr-train labellers``: every IQA metric and machine of the label pipeline and whether it runs here."""

from __future__ import annotations

from typing import Any

from sursmr.cli.app import emit_rows, json_option
from training.cli import main


def labeller_rows() -> list[dict[str, Any]]:
    """Every registered metric and machine with availability (and reason), direction/task, version, rules."""
    from training.machines import MACHINES
    from training.metrics import METRICS

    rows: list[dict[str, Any]] = []
    for name, metric in METRICS.items():
        status = metric.availability()
        rows.append(
            {
                "kind": "metric",
                "name": name,
                "available": status.available,
                "reason": status.reason,
                "encoder": metric.encoder_name(),
                "direction": "lower is better" if metric.lower_is_better else "higher is better",
                "task": None,
                "version": metric.version,
                "jnd_unit": metric.jnd_unit,
                "rule": metric.description or None,
                "applicability": None,
            }
        )
    for name, machine in MACHINES.items():
        status = machine.availability()
        rows.append(
            {
                "kind": "machine",
                "name": name,
                "available": status.available,
                "reason": status.reason,
                "encoder": None,
                "direction": None,
                "task": machine.task,
                "version": machine.version,
                "jnd_unit": None,
                "rule": machine.rule,
                "applicability": machine.applicability,
            }
        )
    return rows


@main.command()
@json_option
def labellers(as_json: bool) -> None:
    """List every IQA metric and machine of the label pipeline and whether it runs here.

    \b
    Examples:
      sursmr-train labellers
      sursmr-train labellers --json | jq -r 'select(.available|not) | "\\(.name): \\(.reason)"'
    """
    rows = labeller_rows()
    emit_rows(rows, ["kind", "name", "available", "encoder", "direction", "task", "version", "reason"], as_json)
