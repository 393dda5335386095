"""Test-wide settings: an isolated cache, offline W&B, few threads."""

from __future__ import annotations

import os
import tempfile

# One cache for the whole session, so the built-in data and Explananda are made once.
os.environ.setdefault("ATTRSEARCH_CACHE", tempfile.mkdtemp(prefix="attrsearch-test-cache-"))
os.environ.setdefault("WANDB_MODE", "offline")
os.environ.setdefault("WANDB_SILENT", "true")
os.environ.setdefault("TUNE_DISABLE_AUTO_CALLBACK_LOGGERS", "1")
os.environ.setdefault("RAY_DEDUP_LOGS", "0")
