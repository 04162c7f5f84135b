"""The deployable artifact, built the way `sam build` builds it, for this machine, and cached.

`sam build` needs the SAM CLI and, for arm64, wheels that do not run on an x86 laptop. This builds
the same layout from the same inputs by the same steps, so the tests, `make invoke` and the cold
start benchmark can run what is deployed:

- each layer: its ContentUri copied to a scratch folder and its Makefile's `build-<LogicalId>`
  target run there with ARTIFACTS_DIR set, exactly what SAM does for `BuildMethod: makefile`;
  LAMBDA_ARCH is this machine's, so the dependencies layer's compiled wheels load here;
- each function: its CodeUri folder copied without caches, as SAM's python builder does for a
  function with no requirements.txt;
- <build>/<LogicalId>/ for every function and layer, as in .aws-sam/build/.

Then every function's layers are merged in order into one folder, as Lambda extracts them into /opt
(hard links: instant, and the files are the built ones).

A build is kept under .aws-sam/local/<key>, the key hashing every input file, the template's build
settings, the Python version and the architecture: an unchanged tree is a lookup, any change a
rebuild. Only the newest build is kept.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import shutil
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from local.template import ROOT, load_template

CACHE = ROOT / ".aws-sam" / "local"
_SKIP = shutil.ignore_patterns("__pycache__", "*.pyc", ".pytest_cache", ".mypy_cache")


class BuildError(RuntimeError):
    pass


def find_python313() -> str | None:
    """Python 3.13 (Lambda's runtime version): $PYTHON313, then python3.13 on PATH, then pyenv."""
    candidates: list[list[str]] = []
    if os.environ.get("PYTHON313"):
        candidates.append([os.environ["PYTHON313"]])
    candidates.append(["python3.13"])
    try:
        versions = subprocess.run(
            ["pyenv", "versions", "--bare"],  # noqa: S607 - pyenv is wherever the user installed it
            capture_output=True,
            text=True,
            check=False,
        ).stdout.split()
    except OSError:
        versions = []
    for version in sorted((v for v in versions if v == "3.13" or v.startswith("3.13.")), reverse=True):
        found = subprocess.run(
            ["pyenv", "which", "python3.13"],  # noqa: S607 - as above
            capture_output=True,
            text=True,
            check=False,
            env={**os.environ, "PYENV_VERSION": version},
        ).stdout.strip()
        if found:
            candidates.append([found])
    probe = "import sys; print(sys.executable if sys.version_info[:2] == (3, 13) else '')"
    for command in candidates:
        try:
            out = subprocess.run([*command, "-c", probe], capture_output=True, text=True, check=False)
        except OSError:
            continue
        if out.returncode == 0 and out.stdout.strip():
            return out.stdout.strip()
    return None


def host_arch() -> str:
    """This machine's architecture in the template's terms (Architectures: arm64 | x86_64)."""
    machine = platform.machine().lower()
    return "arm64" if machine in ("aarch64", "arm64") else "x86_64"


@dataclass(frozen=True)
class BuiltFunction:
    logical_id: str
    task: Path  # what Lambda puts at /var/task
    opt: Path  # the function's layers merged, what Lambda puts at /opt
    handler: str  # module.function, from the template
    memory_mb: int
    timeout_s: int


@dataclass
class Artifact:
    root: Path
    python: str
    arch: str
    functions: dict[str, BuiltFunction] = field(default_factory=dict)
    layers: dict[str, Path] = field(default_factory=dict)  # logical id -> its built folder (holds python/)


def _resources(template: dict[str, Any], kind: str) -> dict[str, dict[str, Any]]:
    return {k: r for k, r in template["Resources"].items() if r["Type"] == kind}


def _inputs(template: dict[str, Any]) -> dict[str, Any]:
    """Everything the build reads from the template, per function and layer."""
    glob = template.get("Globals", {}).get("Function", {})
    functions = {
        logical_id: {
            "code": r["Properties"]["CodeUri"],
            "handler": r["Properties"].get("Handler", glob.get("Handler")),
            "layers": [x["Ref"] for x in r["Properties"].get("Layers", glob.get("Layers", []))],
            "memory": r["Properties"].get("MemorySize", glob.get("MemorySize", 128)),
            "timeout": r["Properties"].get("Timeout", glob.get("Timeout", 3)),
        }
        for logical_id, r in _resources(template, "AWS::Serverless::Function").items()
    }
    layers = {
        logical_id: {"content": r["Properties"]["ContentUri"], "metadata": r.get("Metadata", {})}
        for logical_id, r in _resources(template, "AWS::Serverless::LayerVersion").items()
    }
    return {"functions": functions, "layers": layers}


def _files(folder: Path) -> list[Path]:
    return sorted(
        p
        for p in folder.rglob("*")
        if p.is_file() and "__pycache__" not in p.parts and p.suffix != ".pyc" and not p.name.startswith(".")
    )


def build_key(python: str, arch: str, template: dict[str, Any] | None = None) -> str:
    tpl = template or load_template()
    inputs = _inputs(tpl)
    digest = hashlib.sha256()
    version = subprocess.run([python, "-VV"], capture_output=True, text=True, check=True).stdout
    digest.update(json.dumps([inputs, version, arch], sort_keys=True, default=str).encode())
    folders = [f["code"] for f in inputs["functions"].values()] + [
        x["content"] for x in inputs["layers"].values()
    ]
    for folder in sorted(set(folders)):
        for path in _files(ROOT / folder):
            digest.update(str(path.relative_to(ROOT)).encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()[:16]


def _build_layer(logical_id: str, spec: dict[str, Any], out: Path, python: str, arch: str) -> None:
    method = spec["metadata"].get("BuildMethod")
    if method != "makefile":
        raise BuildError(f"{logical_id}: BuildMethod {method!r}; only makefile layers are built here")
    with tempfile.TemporaryDirectory(prefix=f"build-{logical_id}-") as scratch:
        # SAM runs make in a copy of ContentUri: a Makefile that reaches outside it fails here too.
        source = Path(scratch) / "source"
        shutil.copytree(ROOT / spec["content"], source, ignore=_SKIP)
        target = out / logical_id
        target.mkdir(parents=True)
        done = subprocess.run(
            ["make", "--makefile", "Makefile", f"build-{logical_id}"],  # noqa: S607 - as sam build runs it
            cwd=source,
            env={**os.environ, "ARTIFACTS_DIR": str(target), "LAMBDA_ARCH": arch, "PYTHON313": python},
            capture_output=True,
            text=True,
            check=False,
        )
        if done.returncode != 0:
            raise BuildError(f"building {logical_id} failed:\n{done.stdout}{done.stderr}")


def _merge_layers(out: Path, layer_ids: list[str]) -> Path:
    """The layers extracted one over another, in the function's order, as Lambda makes /opt."""
    opt = out / "_opt" / "+".join(layer_ids)
    if opt.exists():
        return opt
    opt.mkdir(parents=True)

    def link(src: str, dst: str) -> None:
        if os.path.exists(dst):
            os.unlink(dst)  # a later layer's file wins
        try:
            os.link(src, dst)
        except OSError:
            shutil.copy2(src, dst)

    for layer in layer_ids:
        shutil.copytree(out / layer, opt, dirs_exist_ok=True, copy_function=link)
    return opt


def _assemble(root: Path, python: str, arch: str, template: dict[str, Any]) -> Artifact:
    inputs = _inputs(template)
    artifact = Artifact(root=root, python=python, arch=arch)
    artifact.layers = {logical_id: root / logical_id for logical_id in inputs["layers"]}
    for logical_id, fn in inputs["functions"].items():
        artifact.functions[logical_id] = BuiltFunction(
            logical_id=logical_id,
            task=root / logical_id,
            opt=_merge_layers(root, fn["layers"]) / "python",
            handler=fn["handler"],
            memory_mb=int(fn["memory"]),
            timeout_s=int(fn["timeout"]),
        )
    return artifact


def build(python: str | None = None, arch: str | None = None, *, log: Any = None) -> Artifact:
    """The artifact for this machine, from the cache when its inputs have not changed."""
    python = python or find_python313()
    if not python:
        raise BuildError(
            "Python 3.13 (the Lambda runtime's version) was not found on PATH or in pyenv: install it "
            "(e.g. `pyenv install 3.13`) or set PYTHON313=/path/to/python3.13"
        )
    arch = arch or host_arch()
    template = load_template()
    key = build_key(python, arch, template)
    root = CACHE / key
    if (root / ".complete").exists():
        return _assemble(root, python, arch, template)
    if log:
        log(f"building the artifact ({arch}, {python}) into {root.relative_to(ROOT)} ...")
    CACHE.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f"{key}.", dir=CACHE))
    try:
        inputs = _inputs(template)
        for logical_id, spec in inputs["layers"].items():
            _build_layer(logical_id, spec, work, python, arch)
        for logical_id, fn in inputs["functions"].items():
            shutil.copytree(ROOT / fn["code"], work / logical_id, ignore=_SKIP)
        (work / ".complete").touch()
        try:
            work.rename(root)  # atomic: a concurrent build of the same key keeps the first
        except OSError:
            shutil.rmtree(work, ignore_errors=True)
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise
    for old in CACHE.iterdir():  # keep only the newest build (each is ~60 MB)
        if old != root and old.is_dir() and "." not in old.name:  # dotted: a build under way
            shutil.rmtree(old, ignore_errors=True)
    return _assemble(root, python, arch, template)
