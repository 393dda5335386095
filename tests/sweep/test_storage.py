"""``Storage``: one object for a local results folder and an S3 bucket (the moto server)."""

from __future__ import annotations

import pickle

import pytest

from attrsearch.sweep.storage import Storage
from tests.support.s3_server import s3fs


def _exercise(storage: Storage, tmp_path) -> None:
    assert storage.read_text("a/b.txt") is None and not storage.exists("a")
    storage.write_text("a/b.txt", "hello")
    assert storage.read_text("a/b.txt") == "hello" and storage.is_file("a/b.txt") and storage.is_dir("a")
    storage.write_text("a/b.txt", "again")  # replaced whole
    assert storage.read_bytes("a/b.txt") == b"again"
    folder = tmp_path / "up"
    (folder / "tables").mkdir(parents=True)
    (folder / "m.json").write_text("{}")
    (folder / "tables" / "t.csv").write_text("x\n1\n")
    storage.upload(folder, "run")
    assert sorted(storage.files("run")) == ["m.json", "tables/t.csv"]
    assert sorted(storage.list("run")) == ["m.json", "tables"]
    assert not [n for n in storage.list("a") if n.startswith(".")]  # no temp file left
    storage.download("run/tables/t.csv", tmp_path / "down" / "t.csv")
    assert (tmp_path / "down" / "t.csv").read_text() == "x\n1\n"
    sub = storage.sub("run")
    assert sub.root == storage.join("run") and sub.read_text("m.json") == "{}"
    again = pickle.loads(pickle.dumps(storage))  # travels to Ray workers as its root
    assert again == storage and again.read_text("a/b.txt") == "again"


def test_local_folder(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    storage = Storage.at("results")
    assert storage.root == str(tmp_path / "results") and storage.is_local and str(storage) == storage.root
    assert storage.join("sweep") == f"{tmp_path}/results/sweep"
    _exercise(storage, tmp_path)
    assert (tmp_path / "results" / "a" / "b.txt").read_text() == "again"


def test_s3_bucket(tmp_path, moto_s3, monkeypatch):
    for key, value in moto_s3.items():
        monkeypatch.setenv(key, value)
    s3fs(moto_s3).create_dir("attrsearch-storage")
    storage = Storage.at("s3://attrsearch-storage/results")
    assert storage.root == "s3://attrsearch-storage/results" and not storage.is_local
    assert storage.fs_path("x") == "attrsearch-storage/results/x"
    _exercise(storage, tmp_path)
    with s3fs(moto_s3).open_input_stream("attrsearch-storage/results/a/b.txt") as fh:
        assert fh.read() == b"again"


def test_a_missing_folder_lists_nothing_recursively(tmp_path):
    storage = Storage.at(tmp_path / "none")
    assert storage.files() == [] and not storage.exists()
    with pytest.raises(OSError):
        storage.list()
