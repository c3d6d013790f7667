"""The two tasks of seed 000: hockey puck shooting and basketball throwing."""

from __future__ import annotations

from sim_bridge.tasks.base import ContactClass, Task, TaskEvaluation

TASK_NAMES = ("hockey", "basketball")


def make_task(name: str) -> Task:
    """A task by name (``hockey`` or ``basketball``)."""
    if name == "hockey":
        from sim_bridge.tasks.hockey import Hockey

        return Hockey()
    if name == "basketball":
        from sim_bridge.tasks.basketball import Basketball

        return Basketball()
    raise ValueError(f"unknown task {name!r}; expected one of {', '.join(TASK_NAMES)}")


__all__ = ["ContactClass", "Task", "TaskEvaluation", "TASK_NAMES", "make_task"]
