"""The ``seer`` command on a small pool."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from seer_langgraph import Experience, Step, __version__
from seer_langgraph.cli import main
from seer_langgraph.embeddings import HashingEmbeddings
from seer_langgraph.pool import open_pool


@pytest.fixture
def pool_dir(tmp_path):
    d = tmp_path / "pool"
    p = open_pool(path=d, backend="qdrant", embeddings=HashingEmbeddings())
    p.commit_many(
        [Experience(request=f"req {i}", steps=[Step(tool="t", args={"i": i}, observation="o")], answer=str(i), intent="x") for i in range(3)]
    )
    p.commit(Experience(request="other tenant", answer="y"), tenant="acme")
    p.close()
    return d


def run(capsys, *argv):
    code = main(list(argv))
    out = capsys.readouterr()
    return code, out.out, out.err


def test_version():
    out = subprocess.run([sys.executable, "-m", "seer_langgraph.cli", "--version"], capture_output=True, text=True)
    assert out.returncode == 0 and __version__ in out.stdout


def test_stats_list_show(capsys, pool_dir):
    code, out, _ = run(capsys, "pool", "stats", "--path", str(pool_dir), "--json")
    data = json.loads(out)
    assert code == 0 and data["total"] == 4 and data["tenants"] == {"acme": 1, "default": 3}
    code, out, _ = run(capsys, "pool", "stats", "--path", str(pool_dir))
    assert "qdrant-client:path" in out and "acme" in out
    code, out, _ = run(capsys, "pool", "list", "--path", str(pool_dir), "--json")
    items = json.loads(out)
    assert len(items) == 3 and {i["request"] for i in items} == {"req 0", "req 1", "req 2"}
    code, out, _ = run(capsys, "pool", "show", items[0]["id"], "--path", str(pool_dir), "--json")
    assert json.loads(out)["id"] == items[0]["id"]
    code, _, err = run(capsys, "pool", "show", items[0]["id"], "--path", str(pool_dir), "--tenant", "acme")
    assert code == 1 and "no experience" in err


def test_export_import_delete(capsys, pool_dir, tmp_path):
    f = tmp_path / "x.jsonl"
    assert run(capsys, "pool", "export", str(f), "--path", str(pool_dir))[0] == 0
    assert len(f.read_text().splitlines()) == 3
    new = tmp_path / "new"
    code, out, _ = run(capsys, "pool", "import", str(f), "--path", str(new), "--json")
    assert code == 0 and json.loads(out)["imported"] == 3
    bad = tmp_path / "bad.jsonl"
    bad.write_text(f.read_text() + "{broken\n")
    code, _, err = run(capsys, "pool", "import", str(bad), "--path", str(tmp_path / "new2"))
    assert code == 1 and "bad.jsonl:4" in err
    ids = [json.loads(line)["id"] for line in f.read_text().splitlines()]
    code, out, _ = run(capsys, "pool", "delete", ids[0], "--path", str(new), "--json")
    assert json.loads(out) == {"deleted": 1}


def test_errors_are_clear(capsys, tmp_path):
    code, _, err = run(capsys, "pool", "stats", "--path", str(tmp_path / "missing"))
    assert code != 0 and "no pool" in err
    code, _, err = run(capsys, "pool", "stats")
    assert code == 1 and "say which pool" in err
    code, _, err = run(capsys, "pool", "list", "--memory", "--tenant", "bad tenant")
    assert code == 1 and "invalid tenant" in err
