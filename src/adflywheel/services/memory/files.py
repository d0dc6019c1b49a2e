"""Index files through fsspec: a local folder by default, ``gs://``/``s3://``/``memory://`` by URL.

Layout under ``<artifacts>/memory/<scope>/``: immutable data files named by version, hash and a
random suffix, and ``manifest.json`` naming the current one with its SHA-256. Writes never tear a
reader's view: data first, manifest last. On a local disk each file goes to a temporary name,
is fsynced and renamed into place (``os.replace`` is atomic); on object stores a single PUT is
atomic, so the manifest (one small object) is the commit point. Reads verify the manifest and
the data's hash; anything missing or torn raises ``IndexFileError`` and the caller rebuilds
from the database.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
import uuid
from dataclasses import asdict, dataclass
from typing import Any

import fsspec
from fsspec.implementations.local import LocalFileSystem

MANIFEST = "manifest.json"
TEMP_GRACE_S = 3600.0


class IndexFileError(RuntimeError):
    """The stored index is missing, torn or unreadable; the message says which."""


@dataclass(frozen=True, slots=True)
class FileManifest:
    scope: str
    version: int
    content_hash: str
    count: int
    dim: int
    kind: str
    data: str  # file name of the FAISS bytes, beside the manifest
    sha256: str
    extra: str | None = None  # optional side file (the shared index's coarse stats)
    extra_sha256: str | None = None

    def as_json(self) -> bytes:
        return json.dumps(asdict(self), sort_keys=True).encode()

    @classmethod
    def parse(cls, raw: bytes) -> FileManifest:
        try:
            data = json.loads(raw)
            return cls(**data)
        except (ValueError, TypeError) as error:
            raise IndexFileError(f"the manifest is unreadable: {error}") from error


class IndexFiles:
    """The index files of every scope under one artifacts URL."""

    def __init__(self, url: str) -> None:
        self.url = url
        fs, root = fsspec.core.url_to_fs(url)
        self.fs: fsspec.AbstractFileSystem = fs
        self.root = f"{root.rstrip('/')}/memory"
        self.local = isinstance(fs, LocalFileSystem)

    def folder(self, scope: str) -> str:
        return f"{self.root}/{scope}"

    def write(
        self,
        scope: str,
        *,
        version: int,
        content_hash: str,
        count: int,
        dim: int,
        kind: str,
        data: bytes,
        extra: bytes | None = None,
    ) -> FileManifest:
        """Write a new index for ``scope`` and switch the manifest to it; then drop older data
        files (best effort: a leftover file is harmless, it is never referenced)."""
        folder = self.folder(scope)
        self.fs.makedirs(folder, exist_ok=True)
        stem = f"v{version}-{content_hash[:12]}-{uuid.uuid4().hex[:8]}"
        data_name = f"index-{stem}.faiss"
        self._put(f"{folder}/{data_name}", data)
        extra_name = None
        if extra is not None:
            extra_name = f"extra-{stem}.json"
            self._put(f"{folder}/{extra_name}", extra)
        manifest = FileManifest(
            scope,
            version,
            content_hash,
            count,
            dim,
            kind,
            data_name,
            hashlib.sha256(data).hexdigest(),
            extra_name,
            hashlib.sha256(extra).hexdigest() if extra is not None else None,
        )
        self._put(f"{folder}/{MANIFEST}", manifest.as_json())
        self._prune(folder, version)
        return manifest

    def read_manifest(self, scope: str) -> FileManifest:
        path = f"{self.folder(scope)}/{MANIFEST}"
        try:
            raw = self.fs.cat_file(path)
        except FileNotFoundError as error:
            raise IndexFileError(f"no index file for {scope}") from error
        return FileManifest.parse(raw)

    def read(self, scope: str) -> tuple[FileManifest, bytes, bytes | None]:
        """The manifest, the verified index bytes and the verified side file (if any)."""
        manifest = self.read_manifest(scope)
        data = self._verified(scope, manifest.data, manifest.sha256)
        extra = None
        if manifest.extra is not None:
            extra = self._verified(scope, manifest.extra, manifest.extra_sha256)
        return manifest, data, extra

    def remove(self, scope: str) -> None:
        folder = self.folder(scope)
        if self.fs.exists(folder):
            self.fs.rm(folder, recursive=True)

    def _verified(self, scope: str, name: str, sha256: str | None) -> bytes:
        try:
            data = bytes(self.fs.cat_file(f"{self.folder(scope)}/{name}"))
        except FileNotFoundError as error:
            raise IndexFileError(f"the index file {name} of {scope} is missing") from error
        if hashlib.sha256(data).hexdigest() != sha256:
            raise IndexFileError(f"the index file {name} of {scope} is torn (hash mismatch)")
        return data

    def _put(self, path: str, data: bytes) -> None:
        if not self.local:
            self.fs.pipe_file(path, data)  # one object, written whole or not at all
            return
        temp = f"{path}.tmp-{uuid.uuid4().hex[:8]}"
        with open(temp, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temp, path)
        _fsync_dir(os.path.dirname(path))

    def _prune(self, folder: str, version: int) -> None:
        """Remove data files of older versions, and temporary files a crashed writer left more
        than an hour ago (a younger one may be a write in progress)."""
        try:
            entries = self.fs.ls(folder, detail=True)
        except FileNotFoundError:
            return
        now = time.time()
        for entry in entries:
            name = str(entry["name"]).rsplit("/", 1)[-1]
            if ".tmp-" in name:
                old = now - float(entry.get("mtime") or now) > TEMP_GRACE_S
                if not old:
                    continue
            elif _version_of(name) is None or (_version_of(name) or 0) >= version:
                continue
            try:
                self.fs.rm_file(f"{folder}/{name}")
            except OSError:
                continue


def _version_of(name: str) -> int | None:
    """The version in ``index-v12-….faiss`` / ``extra-v12-….json``."""
    if not (name.startswith("index-v") or name.startswith("extra-v")):
        return None
    try:
        return int(name.split("-", 2)[1][1:])
    except (IndexError, ValueError):
        return None


def _fsync_dir(path: str) -> None:
    """Make the rename itself durable (POSIX: fsync the directory)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def describe(manifest: FileManifest) -> dict[str, Any]:
    return {k: v for k, v in asdict(manifest).items() if k not in ("data", "extra")}
