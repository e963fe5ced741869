"""The learning demo: accumulate experience on training tasks, then compare recall vs no recall.

Round 1 runs the training tasks with SEER on; each task gets up to ``explore`` attempts (the
first greedy, the others sampled) and only verified successes are committed, at once, so later
tasks can recall them. Round 2 runs new tasks of the same kinds twice -- with recall and with
``k=0`` -- on a frozen pool, so the comparison is on the same tasks.

Success is strict (:class:`ShopJudge`): the answer must match the ground truth *and* every tool of
the task's gold chain must have run without error, so a right number reached by a guess is not
committed.

Optionally a *teacher* solves the training tasks the agent failed on every attempt -- the world's
scripted expert (standing in for a person who shows how, a human-approved run) or a stronger model.
Its trajectory is judged by the same strict judge and, only if verified, written to a JSONL file and
imported through :meth:`ExperiencePool.import_jsonl` -- the same path as ``seer pool import`` --
labelled ``verdict.source = "teacher:..."`` so own and taught experience stay distinguishable.
"""

from __future__ import annotations

import json
import statistics
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, HumanMessage, ToolMessage

from ..config import SeerConfig
from ..evaluators import BaseEvaluator, ReferenceMatch, RunRecord
from ..experience import Experience, Step, Verdict
from ..graph import create_seer_agent
from ..pool import ExperiencePool
from .world import ShopWorld, Task

__all__ = ["DemoReport", "ShopJudge", "TaskResult", "Teacher", "model_teacher", "plot_report", "run_demo", "run_task", "teach"]

Teacher = Callable[[Task], "tuple[list[Step], str | None]"]
"""Solves a task: returns the steps it took (tool, args, observation) and its final answer."""

SYSTEM_PROMPT = (
    "You answer questions about a shop by calling tools. Call exactly one tool at a time and wait for its result. "
    "Use exact names and ids from the question or from earlier results. Use the calculator for any arithmetic. "
    "When you know the answer, reply with the answer only, e.g. a number or a word."
)


class ShopJudge(BaseEvaluator):
    """Strict success: the answer matches *and* every gold tool ran without error."""

    def __init__(self, task: Task):
        self.task = task
        self.match = ReferenceMatch(task.match)

    def evaluate(self, run: RunRecord) -> Verdict:
        v = self.match.evaluate(run.model_copy(update={"reference": self.task.answer}))
        if not v.success:
            return v
        used = {s.tool for s in run.steps if not s.error}
        missing = sorted(set(self.task.gold_tools) - used)
        if missing:
            return Verdict(success=False, source="shop-judge", score=0.0, reason=f"right answer but tools {missing} never ran: not a verified method")
        return Verdict(success=True, source="shop-judge", score=1.0, reason="answer and method verified")


@dataclass
class TaskResult:
    """One attempt at one task."""

    round: str
    task_id: str
    kind: str
    difficulty: str
    k: int
    attempt: int
    success: bool
    answer: str | None
    expected: str
    steps: int
    tool_errors: int
    recalled: int
    seconds: float
    committed: bool
    error: str | None = None


@dataclass
class DemoReport:
    """Everything the demo measured."""

    model: str
    seed: int
    train: list[TaskResult] = field(default_factory=list)
    test_recall: list[TaskResult] = field(default_factory=list)
    test_no_recall: list[TaskResult] = field(default_factory=list)
    teacher: str | None = None
    taught: list[TaskResult] = field(default_factory=list)
    pool_size: int = 0
    pool_sizes: list[int] = field(default_factory=list)
    own_sizes: list[int] = field(default_factory=list)

    @staticmethod
    def accuracy(results: Sequence[TaskResult], difficulty: str | None = None) -> float:
        rows = [r for r in results if difficulty is None or r.difficulty == difficulty]
        return sum(r.success for r in rows) / len(rows) if rows else 0.0

    def summary(self) -> dict[str, Any]:
        def block(rows: list[TaskResult]) -> dict[str, Any]:
            return {
                "accuracy": self.accuracy(rows),
                "easy": self.accuracy(rows, "easy"),
                "hard": self.accuracy(rows, "hard"),
                "solved": sum(r.success for r in rows),
                "tasks": len(rows),
                "mean_steps": statistics.fmean(r.steps for r in rows) if rows else 0.0,
                "tool_errors": sum(r.tool_errors for r in rows),
                "seconds": sum(r.seconds for r in rows),
            }

        return {
            "model": self.model,
            "seed": self.seed,
            "pool_size": self.pool_size,
            "teacher": self.teacher,
            "taught_imported": sum(r.committed for r in self.taught),
            "train_success_any_attempt": len({r.task_id for r in self.train if r.success}),
            "train_tasks": len({r.task_id for r in self.train}),
            "with_recall": block(self.test_recall),
            "without_recall": block(self.test_no_recall),
        }

    def to_json(self) -> str:
        return json.dumps(
            {"summary": self.summary(), "train": [asdict(r) for r in self.train], "test_recall": [asdict(r) for r in self.test_recall],
             "test_no_recall": [asdict(r) for r in self.test_no_recall], "taught": [asdict(r) for r in self.taught],
             "pool_sizes": self.pool_sizes, "own_sizes": self.own_sizes},
            indent=2,
        )


def run_task(
    task: Task,
    world: ShopWorld,
    model: BaseChatModel,
    pool: ExperiencePool,
    *,
    k: int,
    commit: bool,
    round_name: str,
    attempt: int = 0,
    max_steps: int = 6,
    intents: dict[str, str] | None = None,
    render_style: str = "json",
    follow_examples: bool = False,
) -> TaskResult:
    """Run one task through the prebuilt SEER agent and judge it strictly."""
    judge = ShopJudge(task)
    out, answer, error, seconds = _run_agent(task, world, model, pool, k=k, evaluator=judge if commit else None,
                                             max_steps=max_steps, intents=intents, render_style=render_style, follow_examples=follow_examples)
    msgs = out["messages"]
    # round 1 commits through the agent's own judge; round 2 is judged here, with the same judge
    verdict = out.get("seer_verdict") if commit and out.get("seer_verdict") else judge.evaluate(
        RunRecord(request=task.question, answer=answer, steps=_steps(out))
    ).model_dump()
    tool_msgs = [m for m in msgs if isinstance(m, ToolMessage)]
    return TaskResult(
        round=round_name,
        task_id=task.id,
        kind=task.kind,
        difficulty=task.difficulty,
        k=k,
        attempt=attempt,
        success=bool(verdict["success"]),
        answer=answer,
        expected=task.answer,
        steps=len(tool_msgs),
        tool_errors=sum(m.status == "error" for m in tool_msgs),
        recalled=len(out.get("seer_recalled_ids") or []),
        seconds=seconds,
        committed=bool(out.get("seer_committed_id")),
        error=error,
    )


def _run_agent(
    task: Task, world: ShopWorld, model: BaseChatModel, pool: ExperiencePool, *, k: int, evaluator: BaseEvaluator | None,
    max_steps: int, intents: dict[str, str] | None, render_style: str, follow_examples: bool = False,
) -> tuple[dict[str, Any], str | None, str | None, float]:
    cfg = SeerConfig(k=k, max_steps=max_steps, system_prompt=SYSTEM_PROMPT, render_observation_chars=400, render_style=render_style,
        require_tool_first=True,  # every shop question needs a lookup: the same rule with and without recall
        follow_examples=follow_examples,  # acts only through recalled examples: no effect at k=0
    )
    agent = create_seer_agent(model, world.tools(), pool, evaluator=evaluator, config=cfg, intents=intents)
    start = time.perf_counter()
    error = None
    try:
        out = agent.invoke({"messages": [HumanMessage(task.question)]}, config={"recursion_limit": 4 * max_steps + 10})
    except Exception as exc:  # a crashed run is a failed run, reported, not a crashed demo
        out = {"messages": [HumanMessage(task.question)]}
        error = f"{type(exc).__name__}: {exc}"[:300]
    seconds = time.perf_counter() - start
    msgs = out["messages"]
    last = msgs[-1] if msgs else None
    answer = last.content if isinstance(last, AIMessage) and not last.tool_calls and isinstance(last.content, str) else None
    return out, answer, error, seconds


def model_teacher(model: BaseChatModel, world: ShopWorld, pool: ExperiencePool, *, k: int = 2, render_style: str = "json") -> Teacher:
    """A stronger model as the teacher: it runs the same agent (recalling from the same pool)."""

    def solve(task: Task) -> tuple[list[Step], str | None]:
        out, answer, _, _ = _run_agent(task, world, model, pool, k=k, evaluator=None, max_steps=8, intents=None, render_style=render_style)
        return list(_steps(out)), answer

    return solve


def teach(task: Task, teacher: Teacher, pool: ExperiencePool, jsonl: str | Path, *, source: str) -> TaskResult:
    """Let ``teacher`` solve ``task``; if the strict judge verifies it, import it into ``pool``.

    The verified trajectory is appended to ``jsonl`` (kept for inspection) and imported with
    :meth:`ExperiencePool.import_jsonl`; an unverified one is reported and not imported.

    >>> from seer_langgraph.pool import open_pool
    >>> from seer_langgraph.embeddings import HashingEmbeddings
    >>> import tempfile, os
    >>> world = ShopWorld(seed=1)
    >>> task = world.tasks(1, kinds=["order_value"], seed=3)[0]
    >>> pool = open_pool(embeddings=HashingEmbeddings())
    >>> d = tempfile.mkdtemp()
    >>> r = teach(task, world.expert_solution, pool, os.path.join(d, "taught.jsonl"), source="expert")
    >>> r.success, r.committed, pool.count()
    (True, True, 1)
    """
    start = time.perf_counter()
    error = None
    try:
        steps, answer = teacher(task)
    except Exception as exc:
        steps, answer, error = [], None, f"{type(exc).__name__}: {exc}"[:300]
    verdict = ShopJudge(task).evaluate(RunRecord(request=task.question, answer=answer, steps=steps))
    imported = False
    if verdict.success:
        exp = Experience(request=task.question, steps=steps, answer=str(answer), tenant=pool.tenant,
                         verdict=verdict.model_copy(update={"source": f"teacher:{source}"}), metadata={"taught_by": source, "task_kind": task.kind})
        path = Path(jsonl)
        path.parent.mkdir(parents=True, exist_ok=True)
        one = path.with_name(f".{path.name}.{exp.id}.tmp")
        line = exp.model_dump_json() + "\n"
        one.write_text(line)
        try:
            rep = pool.import_jsonl(one)
        finally:
            one.unlink(missing_ok=True)
        with path.open("a") as fh:
            fh.write(line)
        imported = bool(rep.imported)
    return TaskResult(
        round="teacher", task_id=task.id, kind=task.kind, difficulty=task.difficulty, k=0, attempt=0, success=verdict.success,
        answer=answer, expected=task.answer, steps=len(steps), tool_errors=sum(s.error for s in steps), recalled=0,
        seconds=time.perf_counter() - start, committed=imported, error=error or (None if verdict.success else verdict.reason),
    )


def _steps(out: dict[str, Any]) -> list[Any]:
    from ..history import read_run

    return read_run(out["messages"]).steps if out.get("messages") else []


def run_demo(
    world: ShopWorld,
    make_model: Callable[[int], BaseChatModel],
    pool: ExperiencePool,
    *,
    train_tasks: Sequence[Task],
    test_tasks: Sequence[Task],
    k: int = 4,
    explore: int = 2,
    model_name: str = "model",
    seed: int = 0,
    intents: dict[str, str] | None = None,
    on_result: Callable[[TaskResult], None] | None = None,
    progress: bool = True,
    render_style: str = "json",
    teacher: Teacher | None = None,
    teacher_name: str = "teacher",
    taught_file: str | Path | None = None,
    follow_examples: bool = False,
) -> DemoReport:
    """Round 1 (accumulate with exploration) then round 2 (same tasks with and without recall).

    ``make_model(attempt)`` returns the model for an attempt: attempt 0 greedy, later ones sampled.
    With ``teacher``, a training task the agent failed on every attempt is solved by the teacher
    and, if verified, imported (see :func:`teach`); the pool's own/taught split is reported.
    """
    from tqdm.auto import tqdm

    if teacher is not None and taught_file is None:
        raise ValueError("a teacher needs taught_file: the JSONL file its verified trajectories are imported from")
    report = DemoReport(model=model_name, seed=seed, teacher=teacher_name if teacher is not None else None)
    total = len(train_tasks) * explore + 2 * len(test_tasks)
    bar = tqdm(total=total, desc="seer demo", unit="run", disable=not progress)

    def record(r: TaskResult, into: list[TaskResult]) -> None:
        into.append(r)
        bar.update(1)
        if on_result:
            on_result(r)

    for task in train_tasks:
        for attempt in range(explore):
            r = run_task(task, world, make_model(attempt), pool, k=k, commit=True, round_name="train", attempt=attempt, intents=intents,
                         render_style=render_style, follow_examples=follow_examples)
            record(r, report.train)
            if r.success:
                bar.update(explore - attempt - 1)
                break
        else:
            if teacher is not None:
                t = teach(task, teacher, pool, taught_file, source=teacher_name)  # type: ignore[arg-type]
                report.taught.append(t)
                if on_result:
                    on_result(t)
        report.pool_sizes.append(pool.count())
        report.own_sizes.append(pool.count() - sum(t.committed for t in report.taught))
    for task in test_tasks:
        for kk, into in ((k, report.test_recall), (0, report.test_no_recall)):
            record(run_task(task, world, make_model(0), pool, k=kk, commit=False, round_name="test", intents=intents, render_style=render_style,
                            follow_examples=follow_examples), into)
    bar.close()
    report.pool_size = pool.count()
    return report


def plot_report(reports: Sequence[DemoReport], path: str | Path) -> Path:
    """Learning curve (pool growth and training success) and round-2 accuracy with vs without recall."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 4.2))
    for rep in reports:
        xs = list(range(1, len(rep.pool_sizes) + 1))
        line = ax1.plot(xs, rep.pool_sizes, marker="o", label=f"seed {rep.seed}: pool size")[0]
        if rep.teacher and rep.own_sizes:
            ax1.plot(xs, rep.own_sizes, linestyle="--", color=line.get_color(), label=f"seed {rep.seed}: of which the agent's own")
        ax1.set_xlabel("training tasks seen")
        ax1.set_ylabel("verified experiences in the pool")
    ax1.set_title("Round 1: the pool grows with verified successes")
    ax1.legend(fontsize=8)
    groups = ["all", "easy", "hard"]
    width = 0.38
    for i, (label, attr) in enumerate([("with recall (k>0)", "test_recall"), ("without recall (k=0)", "test_no_recall")]):
        vals = []
        errs = []
        for g in groups:
            accs = [DemoReport.accuracy(getattr(rep, attr), None if g == "all" else g) for rep in reports]
            vals.append(statistics.fmean(accs) * 100)
            errs.append((statistics.pstdev(accs) * 100) if len(accs) > 1 else 0.0)
        ax2.bar([x + (i - 0.5) * width for x in range(len(groups))], vals, width, yerr=errs, capsize=3, label=label)
    ax2.set_xticks(range(len(groups)), groups)
    ax2.set_ylabel("round 2 accuracy (%)")
    ax2.set_ylim(0, 100)
    ax2.set_title(f"Round 2: same tasks, {len(reports)} seed(s)")
    ax2.legend(fontsize=8)
    fig.tight_layout()
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=120)
    plt.close(fig)
    return out
