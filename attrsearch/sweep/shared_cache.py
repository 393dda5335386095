"""Cache entries shared through a sweep's storage, for clusters whose nodes share no disk.

``SharedCache(uri)`` mirrors local cache entries (``attrsearch.cache.CacheEntry``,
``<cache_dir>/<kind>/<key>/``) at ``<uri>/<kind>/<key>/``; a sweep's is ``<storage>/<sweep name>``,
so a trained Explanandum lies at ``<storage>/<sweep name>/explananda/<entry folder>/``. Storage is a
local folder or a URI pyarrow opens (``s3://...``): credentials come from the environment, read by
pyarrow's client, and are never written (the source recorded in a fetched copy has none).

``publish`` uploads the payload files first and ``meta.json`` last: in storage, as in a local cache,
``meta.json`` marks a complete entry, and an entry without it is absent (never fetched). On a local
folder every file appears by a rename; an S3 object appears whole when its upload ends.
``fetch`` downloads a complete entry into the private temp folder of ``CacheEntry.build``, which
publishes it locally under its lock with its atomic rename; the copy holds ``fetched.json`` (where
it came from), which tells a fetched copy from one trained on this node (and is not published:
a fetched copy is published into another storage as a plain entry). Two nodes publishing the same entry at once both upload a complete copy (files of
the same key); the sweep's preparation trains each entry once, so only Explananda trained on
demand by trials (continuous search fields) can be published twice.
A fetched copy is checked against the checksums of the stored ``meta.json`` (``attrsearch.cache``)
before it is published locally: a corrupt stored copy is reported in one warning line and never
used (the node trains its own; the stored copy is left as it is).
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from attrsearch.cache import FETCHED, META, VERSION_FIELD, CacheEntry, CorruptEntry, payload_files
from attrsearch.sweep.storage import Storage

log = logging.getLogger(__name__)


def public_uri(uri: str) -> str:
    """``uri`` without user info or query (``s3://KEY:SECRET@bucket/x?...`` -> ``s3://bucket/x``)."""
    parts = urlsplit(uri)
    if not parts.netloc:  # a local folder
        return uri
    return urlunsplit((parts.scheme, parts.netloc.rpartition("@")[2], parts.path, "", ""))


@dataclass(frozen=True)
class SharedCache:
    """Cache entries under ``uri`` (a folder or a URI); picklable (it holds the URI only)."""

    uri: str

    def location(self, entry: CacheEntry) -> str:
        """Where ``entry`` lies in storage, without credentials."""
        return f"{public_uri(self.uri).rstrip('/')}/{entry.kind}/{entry.key}"

    def published_meta(self, entry: CacheEntry) -> dict[str, Any] | None:
        """The stored ``meta.json`` of a complete entry of ``entry.version``; None when absent."""
        data = Storage.at(self.uri).read_bytes(f"{entry.kind}/{entry.key}/{META}")
        if data is None:
            return None
        try:
            meta = json.loads(data.decode())
        except ValueError:
            return None
        if not isinstance(meta, dict) or meta.get(VERSION_FIELD, 1) != entry.version:
            return None
        return meta

    def is_published(self, entry: CacheEntry) -> bool:
        return self.published_meta(entry) is not None

    def publish(self, entry: CacheEntry) -> bool:
        """Upload the complete local ``entry`` unless storage holds it; True when uploaded."""
        if not entry.exists():
            raise FileNotFoundError(f"{entry.path}: not a complete cache entry")
        if self.is_published(entry):
            return False
        storage = Storage.at(self.uri)
        folder = f"{entry.kind}/{entry.key}"
        for rel in [*payload_files(entry.path), META]:  # meta.json last: the completeness marker
            storage.upload(entry.path / rel, f"{folder}/{rel}")  # complete or absent, on a folder as on S3
        return True

    def fetch(self, entry: CacheEntry) -> bool:
        """Copy ``entry`` from storage into the local cache unless the cache has it; True when fetched
        (False also when storage has no complete copy)."""
        if entry.exists():
            return False
        meta = self.published_meta(entry)
        if meta is None:
            return False
        storage = Storage.at(self.uri)
        folder = f"{entry.kind}/{entry.key}"
        fetched: list[bool] = []

        def download(tmp: Path) -> dict[str, Any]:
            for rel in storage.files(folder):
                if rel in (META, FETCHED) or any(part.startswith(".") for part in rel.split("/")):
                    continue  # the marker (last), or another publisher's temp file
                storage.download(f"{folder}/{rel}", tmp / rel)
            (tmp / FETCHED).write_text(json.dumps({"source": self.location(entry), "fetched_at": time.time()}))
            fetched.append(True)
            return meta

        try:
            entry.build(download)  # the local lock and atomic rename; a copy built meanwhile wins
        except CorruptEntry as err:  # checked against the stored checksums before it is published locally
            log.warning(f"cache entry {self.location(entry)} in storage is corrupt: {err}; not using it")
            return False
        return bool(fetched)


def is_fetched(folder: Path) -> bool:
    """Whether a local cache entry folder is a copy fetched from storage (not trained here)."""
    return (Path(folder) / FETCHED).is_file()
