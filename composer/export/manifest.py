"""A bundle folder's manifest (`.composer-bundle.json`): exactly the files it holds and their
sha256. Only such a folder, unchanged, is ever replaced: never the writer's files."""
from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

from composer.images import sha256_file

MANIFEST = ".composer-bundle.json"
MANIFEST_FORMAT = 1


def read_manifest(out_dir: Path) -> dict[str, str]:
    """The files a bundle folder's manifest lists (relative path -> sha256); {} when there is
    no readable manifest, so that nothing in the folder counts as ours."""
    path = out_dir / MANIFEST
    try:
        if path.is_symlink() or not path.is_file():
            return {}
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError, RecursionError):
        return {}
    files = data.get("files") if isinstance(data, dict) and data.get("format") == MANIFEST_FORMAT else None
    if not isinstance(files, dict):
        return {}
    return {k: v for k, v in files.items() if isinstance(k, str) and isinstance(v, str)}


def _manifest_folders(files: dict[str, str]) -> set[str]:
    return {parent.as_posix() for name in files for parent in Path(name).parents if parent != Path(".")}


def _not_ours(out_dir: Path, files: dict[str, str], limit: int = 5) -> list[str]:
    """What in out_dir the manifest does not account for (a file it does not list, one changed
    since, a link, a folder of the writer's): up to `limit` names, [] for a folder all ours."""
    if not files:  # no manifest: everything is the writer's; name the first few without a walk
        return sorted(p.name for p in out_dir.iterdir())[:limit]
    folders = _manifest_folders(files)
    found: list[str] = []
    for dirpath, dirnames, filenames in os.walk(out_dir, followlinks=False):
        here = Path(dirpath).relative_to(out_dir)
        for name in sorted(dirnames):
            rel = (here / name).as_posix()
            if rel not in folders or (Path(dirpath) / name).is_symlink():
                found.append(rel + "/")
        dirnames[:] = sorted(d for d in dirnames if (here / d).as_posix() in folders)
        for name in sorted(filenames):
            rel = (here / name).as_posix()
            path = Path(dirpath) / name
            if rel == MANIFEST:
                continue
            if rel not in files or path.is_symlink() or not path.is_file():
                found.append(rel)
            elif sha256_file(path) != files[rel]:
                found.append(f"{rel} (changed since composer wrote it)")
        if len(found) >= limit:
            break
    return found[:limit]


def check_replaceable(out_dir: Path) -> None:
    """Only a new or empty folder, or a bundle this tool wrote and nobody changed since (its
    manifest lists exactly the files it holds), may be replaced: never the writer's files."""
    out_dir = Path(out_dir)
    if not out_dir.exists() and not out_dir.is_symlink():
        return
    if out_dir.is_symlink() or not out_dir.is_dir():
        raise FileExistsError(f"{out_dir}: exists and is not a folder; choose another output folder")
    try:
        foreign = _not_ours(out_dir, read_manifest(out_dir))
    except OSError as exc:
        raise FileExistsError(f"{out_dir}: cannot check the folder ({exc.strerror or exc}); "
                              "choose another output folder") from exc
    if foreign:
        raise FileExistsError(
            f"{out_dir}: folder holds files that are not an article bundle composer wrote "
            f"({', '.join(foreign)}); nothing was changed: choose an empty or new output folder"
        )


def check_writable(out_dir: Path) -> None:
    """The bundle is staged beside out_dir and renamed into place: the nearest existing folder
    above it must take a new folder. The error names out_dir, never the staging folder."""
    out_dir = Path(out_dir).absolute()
    ancestor = out_dir.parent
    while not ancestor.exists() and ancestor != ancestor.parent:
        ancestor = ancestor.parent
    if not ancestor.is_dir():
        raise OSError(f"{out_dir}: cannot write here ({ancestor} is not a folder)")
    try:
        os.rmdir(tempfile.mkdtemp(prefix=f".{out_dir.name}.probe-", dir=ancestor))
    except OSError as exc:
        raise OSError(f"{out_dir}: cannot write here ({exc.strerror or exc})") from exc


def write_manifest(staging: Path) -> None:
    files = {
        p.relative_to(staging).as_posix(): sha256_file(p)
        for p in sorted(staging.rglob("*")) if p.is_file() and p.name != MANIFEST
    }
    data = {"format": MANIFEST_FORMAT, "generator": "composer", "files": files}
    (staging / MANIFEST).write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")


def remove_listed(folder: Path, files: dict[str, str]) -> None:
    """Delete what the manifest lists, then the folder if nothing else is left: a file someone
    put there in the meantime is never deleted."""
    for name in [*files, MANIFEST]:
        path = folder / name
        if path.is_file() and not path.is_symlink():
            path.unlink()
    for name in sorted(_manifest_folders(files), key=lambda n: -n.count("/")):
        try:
            (folder / name).rmdir()
        except OSError:
            pass
    try:
        folder.rmdir()
    except OSError:
        pass
