"""The demo: a small shop tool world and a two-round learning experiment (``seer demo``)."""

from .runner import DemoReport, ShopJudge, TaskResult, plot_report, run_demo, run_task
from .world import KINDS, ShopWorld, Task, safe_calculate

__all__ = ["KINDS", "DemoReport", "ShopJudge", "ShopWorld", "Task", "TaskResult", "plot_report", "run_demo", "run_task", "safe_calculate"]
