"""archive.jsonl: resume cuts it back to the checkpoint, and what it cuts is kept aside, never lost."""
import json

from nas.search.archive import Archive


def _write(path, n, partial=b""):
    path.write_bytes(b"".join(json.dumps({"index": i}).encode() + b"\n" for i in range(n)) + partial)


def test_lines_past_the_checkpoint_are_kept_aside(tmp_path):
    path = tmp_path / "archive.jsonl"
    _write(path, 5, partial=b'{"index": 5, "arch')
    records = Archive(path).load(keep=3)
    assert [r["index"] for r in records] == [0, 1, 2]
    assert path.read_bytes().count(b"\n") == 3
    aside = (tmp_path / "archive.redone.jsonl").read_bytes().splitlines()
    assert [json.loads(line)["index"] for line in aside[:2]] == [3, 4] and aside[2] == b'{"index": 5, "arch'


def test_an_archive_without_checkpoint_is_never_lost(tmp_path):
    path = tmp_path / "archive.jsonl"
    _write(path, 88)
    original = path.read_bytes()
    assert Archive(path).load(keep=0) == [] and path.read_bytes() == b""
    assert (tmp_path / "archive.redone.jsonl").read_bytes() == original
    _write(path, 2)
    Archive(path).load(keep=0)  # a second cut appends, it does not replace
    assert (tmp_path / "archive.redone.jsonl").read_bytes().count(b"\n") == 90


def test_a_complete_archive_is_left_alone(tmp_path):
    path = tmp_path / "archive.jsonl"
    _write(path, 4)
    assert len(Archive(path).load(keep=4)) == 4 and not (tmp_path / "archive.redone.jsonl").exists()
