"""The per-operator progress bars of ``identify-all``."""

from __future__ import annotations

from rich.progress import Progress

from numident.cli.common import OperatorBars


def test_a_bar_grows_as_its_operators_accounts_are_added() -> None:
    """One bar per operator, made at its first accounts; later additions raise its total and
    answers advance it."""
    progress = Progress(disable=True)
    bars = OperatorBars(progress)
    bars.add("7700000016", "Alfa", 3000, 1000)
    bars.add("7700000023", "Beta", 10, 0)
    bars.add("7700000016", "Alfa", 2000, 0)
    bars.advance("7700000016", 1500)

    shown = {task.description: (task.total, task.completed) for task in progress.tasks}
    assert shown == {"Alfa": (5000, 2500), "Beta": (10, 0)}
