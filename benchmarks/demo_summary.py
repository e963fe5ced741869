"""Summarise `seer demo` output directories as a markdown table (per seed, mean, spread, per kind).

    python benchmarks/demo_summary.py seer-demo [more-dirs ...]

Reads each directory's report-seed*.json (written by `seer demo`); prints, per directory, the
round-2 accuracy with and without recall for every seed, the per-seed gain, its mean and
population standard deviation (the run-to-run spread), and which kinds of task recall won or lost.
"""

from __future__ import annotations

import json
import statistics
import sys
from collections import Counter
from pathlib import Path


def summarise(out: Path) -> str:
    reports = sorted(out.glob("report-seed*.json"), key=lambda p: int(p.stem.split("seed")[1]))
    if not reports:
        raise SystemExit(f"{out}: no report-seed*.json (run `seer demo --out {out}` first)")
    lines = [f"### {out}", "", "| seed | pool (own + taught) | with recall | without recall | gain |", "|---|---|---|---|---|"]
    gains, withs, withouts = [], [], []
    won: Counter[str] = Counter()
    lost: Counter[str] = Counter()
    for path in reports:
        data = json.loads(path.read_text())
        s = data["summary"]
        w, wo = s["with_recall"], s["without_recall"]
        taught = s.get("taught_imported", 0)
        gain = w["solved"] - wo["solved"]
        gains.append(gain / w["tasks"])
        withs.append(w["accuracy"])
        withouts.append(wo["accuracy"])
        for a, b in zip(data["test_recall"], data["test_no_recall"]):
            if a["success"] and not b["success"]:
                won[a["kind"]] += 1
            elif b["success"] and not a["success"]:
                lost[a["kind"]] += 1
        lines.append(
            f"| {s['seed']} | {s['pool_size']} ({s['pool_size'] - taught} + {taught}) | {w['solved']}/{w['tasks']} "
            f"(easy {w['easy']:.0%}, hard {w['hard']:.0%}) | {wo['solved']}/{wo['tasks']} (easy {wo['easy']:.0%}, hard {wo['hard']:.0%}) | {gain:+d} |"
        )
    sd = statistics.pstdev
    lines += [
        "",
        f"Mean accuracy with recall {statistics.fmean(withs):.1%} ± {sd(withs):.1%}, without {statistics.fmean(withouts):.1%} ± {sd(withouts):.1%} "
        f"(± = population standard deviation over {len(reports)} seeds). Gain {statistics.fmean(gains):+.1%} ± {sd(gains):.1%} per seed.",
        f"Tasks recall won: {dict(won) or 'none'}; lost: {dict(lost) or 'none'}.",
        "",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    for arg in sys.argv[1:] or ["seer-demo"]:
        print(summarise(Path(arg)))
