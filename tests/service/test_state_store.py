"""StateStore: the --state file written atomically with a digest, read back or refused."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest

from bastion.service.state_store import (
    ACCEPT_EDITED_FLAG,
    FORMAT_VERSION,
    StateEdited,
    StateSaveFailed,
    StateStore,
    StateStoreError,
    digest_of,
)

BODY = {
    "engine": {"version": 1, "trading_states": {"gen-01": "HALTED"}},
    "builder": {},
    "pending_resets": [],
    "orders": [],
}


def test_load_when_saved_then_same_body_not_edited(tmp_path: Path) -> None:
    """What was saved is read back as it was, marked neither edited nor legacy."""
    store = StateStore(tmp_path / "state.json")
    store.save(BODY)
    loaded = store.load()
    assert loaded is not None
    assert (dict(loaded.body), loaded.edited, loaded.legacy) == (BODY, False, False)


def test_save_when_written_then_versioned_digested_and_private(tmp_path: Path) -> None:
    """The file carries its format version and the digest of the rest; mode 0600."""
    path = tmp_path / "state.json"
    StateStore(path).save(BODY)
    document = json.loads(path.read_text())
    assert document["version"] == FORMAT_VERSION
    digest = document.pop("digest")
    assert digest == digest_of(document)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_save_when_done_then_no_temporary_file_left(tmp_path: Path) -> None:
    """Only the state file remains in the directory after saves."""
    store = StateStore(tmp_path / "state.json")
    store.save(BODY)
    store.save({**BODY, "orders": [{"order_id": "A"}]})
    assert [p.name for p in tmp_path.iterdir()] == ["state.json"]


def test_load_when_no_file_then_none(tmp_path: Path) -> None:
    """No file yet: an empty start, not an error."""
    assert StateStore(tmp_path / "state.json").load() is None


def test_load_when_halted_edited_to_active_then_refused_naming_the_flag(tmp_path: Path) -> None:
    """HALTED turned ACTIVE by hand: the digest no longer matches; refused, and the
    message names the file and --accept-edited-state."""
    path = tmp_path / "state.json"
    StateStore(path).save(BODY)
    path.write_text(path.read_text().replace("HALTED", "ACTIVE"))
    with pytest.raises(StateEdited) as caught:
        StateStore(path).load()
    assert str(path) in str(caught.value)
    assert ACCEPT_EDITED_FLAG in str(caught.value)


def test_load_when_edited_and_accepted_then_loaded_marked_edited(tmp_path: Path) -> None:
    """With accept_edited the edit is taken, and `edited` tells the caller to audit it."""
    path = tmp_path / "state.json"
    StateStore(path).save(BODY)
    path.write_text(path.read_text().replace("HALTED", "ACTIVE"))
    loaded = StateStore(path, accept_edited=True).load()
    assert loaded is not None and loaded.edited
    assert loaded.body["engine"]["trading_states"] == {"gen-01": "ACTIVE"}


def test_load_when_only_whitespace_changed_then_not_edited(tmp_path: Path) -> None:
    """The digest is over the content, not the layout: reindenting is not an edit."""
    path = tmp_path / "state.json"
    StateStore(path).save(BODY)
    path.write_text(json.dumps(json.loads(path.read_text()), indent=4))
    loaded = StateStore(path).load()
    assert loaded is not None and not loaded.edited


def test_load_when_digest_removed_then_refused(tmp_path: Path) -> None:
    """A versioned file without its digest is an edit too."""
    path = tmp_path / "state.json"
    StateStore(path).save(BODY)
    document = json.loads(path.read_text())
    del document["digest"]
    path.write_text(json.dumps(document))
    with pytest.raises(StateEdited):
        StateStore(path).load()


def test_load_when_legacy_file_without_version_then_accepted_once_as_legacy(
    tmp_path: Path,
) -> None:
    """A file written before format 2 ({"engine", "builder"}) is read, marked legacy; the
    next save writes the current format."""
    path = tmp_path / "state.json"
    path.write_text(json.dumps({"engine": BODY["engine"], "builder": {}}))
    store = StateStore(path)
    loaded = store.load()
    assert loaded is not None and loaded.legacy
    store.save(loaded.body)
    assert json.loads(path.read_text())["version"] == FORMAT_VERSION


@pytest.mark.parametrize(
    ("text", "named"),
    [("{not json", "not valid JSON"), ("[]", "JSON object"), ('{"version": 99}', "format 99")],
)
def test_load_when_unreadable_then_refused_naming_the_file(
    tmp_path: Path, text: str, named: str
) -> None:
    """Invalid JSON, not an object, an unknown format: refused with the path and why."""
    path = tmp_path / "state.json"
    path.write_text(text)
    with pytest.raises(StateStoreError) as caught:
        StateStore(path).load()
    assert str(path) in str(caught.value) and named in str(caught.value)


def test_check_directory_when_missing_then_refused_naming_it(tmp_path: Path) -> None:
    """A --state in a directory that does not exist fails at start, with the path."""
    path = tmp_path / "nowhere" / "state.json"
    with pytest.raises(StateStoreError) as caught:
        StateStore(path).check_directory()
    assert str(tmp_path / "nowhere") in str(caught.value)


def test_check_directory_when_not_writable_then_refused_naming_it(tmp_path: Path) -> None:
    """A directory that takes no new file fails at start (a real write is tried: root
    ignores permission bits, so /proc stands in for a read-only mount as root)."""
    if os.geteuid() == 0:
        path = Path("/proc/state.json")
    else:
        directory = tmp_path / "ro"
        directory.mkdir(mode=0o555)
        path = directory / "state.json"
    with pytest.raises(StateStoreError) as caught:
        StateStore(path).check_directory()
    assert str(path) in str(caught.value)


def test_save_when_text_cannot_be_encoded_then_save_failed_and_file_kept(
    tmp_path: Path,
) -> None:
    """A lone surrogate that reached the state fails that save, naming the file; the
    previous file is intact."""
    path = tmp_path / "state.json"
    store = StateStore(path)
    store.save(BODY)
    before = path.read_bytes()
    with pytest.raises(StateSaveFailed) as caught:
        store.save({**BODY, "orders": [{"by": "eve\ud800"}]})
    assert str(path) in str(caught.value)
    assert path.read_bytes() == before


def test_save_when_directory_gone_then_save_failed(tmp_path: Path) -> None:
    """An OSError while writing is a StateSaveFailed naming the file and the errno."""
    path = tmp_path / "gone" / "state.json"
    with pytest.raises(StateSaveFailed) as caught:
        StateStore(path).save(BODY)
    assert str(path) in str(caught.value) and "errno" in str(caught.value)
