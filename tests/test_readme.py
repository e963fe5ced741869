"""The README's Python blocks run as written (a newcomer copies them)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

README = Path(__file__).resolve().parents[1] / "README.md"
BLOCKS = re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S)


def test_readme_has_code():
    assert len(BLOCKS) >= 3


@pytest.mark.parametrize("index", range(len(BLOCKS)))
def test_readme_block_runs(index, capsys):
    exec(compile(BLOCKS[index], f"README.md block {index}", "exec"), {"__name__": f"readme_{index}"})
    out = capsys.readouterr().out
    assert out.strip(), "every README block prints what it shows"


def test_quickstart_recalls_the_first_run(capsys):
    exec(compile(BLOCKS[0], "README quickstart", "exec"), {})
    lines = capsys.readouterr().out.strip().splitlines()
    assert "What does an apple cost?" in lines[0] and lines[1] == "2"


def test_add_seer_example_is_short():
    block = BLOCKS[1]
    code = [line for line in block.splitlines() if line.strip() and not line.strip().startswith("#")]
    seer_lines = [line for line in code if "seer" in line or "add_seer" in line]
    assert len(seer_lines) <= 6  # imports + one add_seer call: well under 20 lines to add SEER
