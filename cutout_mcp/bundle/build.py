"""Packing the MCP Bundle (`.mcpb`) that Claude Desktop installs with a click.

A bundle is a zip with `manifest.json` at its root. Ours holds source only: the manifest declares
`server.type: "uv"`, so the host installs Python and the dependencies from `pyproject.toml`
itself, and the bundle stays a few dozen kilobytes with nothing platform-specific in it.

The build is deterministic (sorted entries, one fixed timestamp and mode, fixed compression) so
that two builds of the same checkout are byte-identical and a bundle can be checked by its hash.
"""

from __future__ import annotations

import json
import os
import re
import stat
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

PACKAGE = "cutout_mcp"
BUNDLE_DIR = Path(__file__).resolve().parent
MANIFEST_PATH = BUNDLE_DIR / "manifest.json"
ICON_PATH = BUNDLE_DIR / "icon.png"
SOURCE_ROOT = BUNDLE_DIR.parent.parent
"""The checkout this module sits in: the folder holding pyproject.toml and README.md."""

ROOT_FILES = ("pyproject.toml", "README.md")
"""What the host needs besides the package: the dependencies, and the readme pyproject names."""

EXCLUDED_PACKAGE_DIRS = (f"{PACKAGE}/bundle",)
"""The build tooling itself: its manifest and icon already sit at the bundle's root."""

ZIP_TIME = (1980, 1, 1, 0, 0, 0)
"""The earliest time a zip can record, for every entry, so the clock never changes the bytes."""
FILE_MODE = 0o644


class BundleError(RuntimeError):
    """The bundle cannot be built from this tree; the message says what is missing or inconsistent."""


def load_manifest(path: Path = MANIFEST_PATH) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return data


def bundle_name(version: str) -> str:
    return f"cutout-mcp-{version}.mcpb"


def project_version(root: Path) -> str:
    """The `[project]` version in pyproject.toml, read without tomllib (not in Python 3.10)."""
    text = (root / "pyproject.toml").read_text(encoding="utf-8")
    project = text.split("[project]", 1)[-1].split("\n[", 1)[0]
    found = re.search(r'^version\s*=\s*"([^"]+)"', project, re.MULTILINE)
    if found is None:
        raise BundleError(f"no [project] version in {root / 'pyproject.toml'}")
    return found.group(1)


def bundle_files(root: Path = SOURCE_ROOT) -> list[tuple[str, Path]]:
    """(name in the bundle, file on disk), sorted by name: the manifest and icon, pyproject, README, source."""
    tooling = root / PACKAGE / "bundle"
    files = {"manifest.json": tooling / "manifest.json", "icon.png": tooling / "icon.png"}
    files.update({name: root / name for name in ROOT_FILES})
    files.update({path.relative_to(root).as_posix(): path for path in _package_sources(root)})
    missing = sorted(name for name, path in files.items() if not path.is_file())
    if missing:
        raise BundleError(f"{root} is not a cutout-mcp source checkout: missing {', '.join(missing)}")
    return sorted(files.items())


def _package_sources(root: Path) -> Iterator[Path]:
    """The package's files, without byte code, caches, hidden files or the build tooling."""
    for folder, dirs, names in os.walk(root / PACKAGE):
        here = Path(folder)
        dirs[:] = sorted(
            d
            for d in dirs
            if d != "__pycache__"
            and not d.startswith(".")
            and (here / d).relative_to(root).as_posix() not in EXCLUDED_PACKAGE_DIRS
        )
        for name in sorted(names):
            path = here / name
            if name.startswith(".") or path.suffix in {".pyc", ".pyo"} or not path.is_file() or path.is_symlink():
                continue
            yield path


def build_bundle(root: Path = SOURCE_ROOT, out_dir: Path | None = None) -> Path:
    """Write `<out_dir>/cutout-mcp-<version>.mcpb` (default `<root>/dist/`) and return its path.

    Refuses to build when the manifest's version is not the package's, since the host shows the
    manifest's version and installs the code's.
    """
    files = bundle_files(root)
    manifest = json.loads(dict(files)["manifest.json"].read_text(encoding="utf-8"))
    version = project_version(root)
    if manifest.get("version") != version:
        raise BundleError(f"manifest.json says version {manifest.get('version')!r}, pyproject.toml {version!r}")
    out_dir = root / "dist" if out_dir is None else out_dir
    out_dir.mkdir(parents=True, exist_ok=True)
    target = out_dir / bundle_name(version)
    partial = target.with_name(f".{target.name}.partial")  # never a half-written bundle under the real name
    try:
        with zipfile.ZipFile(partial, "w") as archive:
            for name, path in files:
                archive.writestr(_entry(name), path.read_bytes(), compresslevel=9)
        os.replace(partial, target)
    finally:
        partial.unlink(missing_ok=True)
    return target


def _entry(name: str) -> zipfile.ZipInfo:
    info = zipfile.ZipInfo(name, date_time=ZIP_TIME)
    info.compress_type = zipfile.ZIP_DEFLATED
    info.create_system = 3  # Unix, so that the mode below is read
    info.external_attr = (stat.S_IFREG | FILE_MODE) << 16
    return info
