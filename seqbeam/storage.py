"""Files and folders on local disk and on ``gs://`` alike, through Beam's ``FileSystems``.

The bottom of the house beside ``configs`` and ``text``: it imports nothing of seqbeam,
and every layer above reads and writes its small files (JSON, markers, text) with it.
Beam's filesystems are the jobs' filesystems: the same paths the pipelines write are read
here without TensorFlow's GCS client, which caches an object's size for a few seconds.
"""

from __future__ import annotations

import json
from typing import Any, Iterable

from apache_beam.io.filesystems import FileSystems


def join_path(base: str, *parts: str) -> str:
    """Joins path parts with '/', for local paths and gs:// URLs alike."""
    path = base.rstrip("/")
    for part in parts:
        path = f"{path}/{part.strip('/')}"
    return path


def write_json(payload: dict, path: str) -> str:
    """Writes a JSON document (local or gs://) and returns its path."""
    with FileSystems.create(path) as f:
        f.write((json.dumps(payload, indent=2, ensure_ascii=False) + "\n").encode("utf-8"))
    return path


def read_json(path: str) -> Any:
    """A JSON document (local or gs://), or None when there is no such file."""
    if not FileSystems.exists(path):
        return None
    with FileSystems.open(path) as f:
        return json.loads(f.read().decode("utf-8"))


def path_exists(path: str) -> bool:
    """Whether a file or a folder is there, local or gs://.

    Cloud Storage has no folders, only object names: ``FileSystems.exists`` finds an
    object named exactly ``path``, so a folder (a SavedModel, a shard folder) counts as
    there when some object's name starts with ``path/``.
    """
    if FileSystems.exists(path):
        return True
    return not FileSystems.get_filesystem(path).has_dirs() and bool(_objects_under(path, limit=1))


def delete_paths(paths: Iterable[str]) -> None:
    """Deletes files and folders with everything in them, local or gs://; missing paths are skipped."""
    for path in paths:
        if FileSystems.exists(path):
            FileSystems.delete([path])
        if not FileSystems.get_filesystem(path).has_dirs() and _objects_under(path, limit=1):
            FileSystems.delete([path.rstrip("/") + "/"])  # on gs://, a trailing '/' deletes the whole prefix


def _objects_under(folder: str, limit: int) -> list:
    return FileSystems.match([folder.rstrip("/") + "/**"], limits=[limit])[0].metadata_list


def write_text(text: str, path: str) -> str:
    """Writes a UTF-8 text file (local or gs://) and returns its path."""
    with FileSystems.create(path) as f:
        f.write(text.encode("utf-8"))
    return path
