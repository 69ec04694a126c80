"""verify: a real 10,000-record rotated trail is intact; every kind of tampering is named.

One keyed trail is written once per module (10,000 records, rotated every ~100 KB);
each tamper case works on its own copy and checks the first problem's file:line.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import pytest

from bastion.service.audit import AuditReadError, AuditTrail, read_records, verify
from bastion.service.audit_format import content_hash
from bastion.service.audit_plain import canonical
from tests.service.audit_support import (
    KEY,
    T0,
    StepClock,
    files_of,
    forged_line,
    lines_of,
    write_lines,
    write_realistic,
)

RECORDS = 10_000


@pytest.fixture(scope="module")
def pristine(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("audit") / "trail"
    trail = AuditTrail.open(
        directory,
        clock=StepClock(T0, timedelta(seconds=2)),
        key=KEY,
        max_bytes=100_000,
        fsync=False,
    )
    write_realistic(trail, RECORDS)
    trail.close()
    return directory


@pytest.fixture
def trail_copy(pristine: Path, tmp_path: Path) -> Path:
    return Path(shutil.copytree(pristine, tmp_path / "copy"))


def test_verify_when_real_rotated_trail_untouched_then_intact(pristine: Path) -> None:
    """10,000 records over ~40 files verify intact, HMACs checked, times spanned."""
    result = verify(pristine, key=KEY)
    assert result.ok and result.reason == "intact" and result.first_bad is None
    assert result.records == RECORDS and result.files == len(files_of(pristine)) > 30
    assert result.hmac == "checked" and result.last_seq == RECORDS
    assert result.first_at == T0 + timedelta(seconds=2)
    assert result.last_at == T0 + timedelta(seconds=2 * RECORDS)


def test_verify_when_no_key_given_then_chain_checked_hmac_not(pristine: Path) -> None:
    """Without the key the chain is still checked; the summary says HMACs were not."""
    result = verify(pristine)
    assert result.ok and result.hmac == "not checked (no key given)"


def _edit_byte(directory: Path) -> str:
    path = files_of(directory)[3]
    lines = lines_of(path)
    lines[17] = lines[17].replace(b'"quantity":"', b'"quantity":"9', 1)
    write_lines(path, lines)
    return f"{path.name}:18"


def _break_json(directory: Path) -> str:
    path = files_of(directory)[3]
    lines = lines_of(path)
    lines[5] = lines[5][:40] + b"#" + lines[5][41:]
    write_lines(path, lines)
    return f"{path.name}:6"


def _delete_line(directory: Path) -> str:
    path = files_of(directory)[5]
    lines = lines_of(path)
    del lines[9]
    write_lines(path, lines)
    return f"{path.name}:10"


def _swap_lines(directory: Path) -> str:
    path = files_of(directory)[7]
    lines = lines_of(path)
    lines[20], lines[21] = lines[21], lines[20]
    write_lines(path, lines)
    return f"{path.name}:21"


def _truncate_file(directory: Path) -> str:
    path = files_of(directory)[-1]
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    return f"{path.name}:{len(lines_of(path)) + 1}"


def _cut_last_line(directory: Path) -> str:
    path = files_of(directory)[-1]
    data = path.read_bytes()
    path.write_bytes(data[:-30])
    return f"{path.name}:{len(lines_of(path)) + 1}"


def _truncate_rotated_file(directory: Path) -> str:
    path = files_of(directory)[10]
    data = path.read_bytes()
    path.write_bytes(data[:-50])
    return f"{path.name}:{len(lines_of(path)) + 1}"


def _remove_rotated_file(directory: Path) -> str:
    files = files_of(directory)
    files[12].unlink()
    return f"{files[13].name}:1"


def _remove_first_file(directory: Path) -> str:
    files = files_of(directory)
    files[0].unlink()
    return f"{files[1].name}:1"


def _cut_whole_lines_of_rotated_file(directory: Path) -> str:
    files = files_of(directory)
    write_lines(files[4], lines_of(files[4])[:-3])
    return f"{files[5].name}:1"


def _append_by_hand(directory: Path) -> str:
    path = files_of(directory)[-1]
    lines = lines_of(path)
    lines.append(forged_line(lines[-1], kind="breaker_reset_requested"))
    write_lines(path, lines)
    return f"{path.name}:{len(lines)}"


def _insert_by_hand(directory: Path) -> str:
    path = files_of(directory)[2]
    lines = lines_of(path)
    lines.insert(4, forged_line(lines[3], kind="order_checked"))
    write_lines(path, lines)
    return f"{path.name}:5"


def _rechain_without_key(directory: Path) -> str:
    """Edit one record and recompute every hash after it: only the HMACs give it away."""
    files = files_of(directory)
    target = files[-2]
    previous, started = None, False
    for path in files[-2:]:
        lines = lines_of(path)
        for index, raw in enumerate(lines):
            obj = json.loads(raw)
            if path == target and index == 2:
                obj["principal"], started = "mallory", True
            elif started:
                obj["prev"] = previous
            if started:
                obj["hash"] = content_hash(obj)
                lines[index] = canonical(obj)
            previous = obj["hash"]
        write_lines(path, lines)
    return f"{target.name}:3"


TAMPERS: dict[str, tuple[Callable[[Path], str], str]] = {
    "byte_edited": (_edit_byte, "edited"),
    "json_broken": (_break_json, "unreadable"),
    "line_deleted": (_delete_line, "removed"),
    "lines_swapped": (_swap_lines, "reordered"),
    "file_truncated": (_truncate_file, "truncated"),
    "last_line_cut_mid_way": (_cut_last_line, "truncated"),
    "rotated_file_truncated": (_truncate_rotated_file, "truncated"),
    "rotated_file_removed": (_remove_rotated_file, "file_removed"),
    "first_file_removed": (_remove_first_file, "first_removed"),
    "rotated_file_tail_cut": (_cut_whole_lines_of_rotated_file, "removed"),
    "line_appended_without_key": (_append_by_hand, "hmac_missing"),
    "line_inserted_without_key": (_insert_by_hand, "hmac_missing"),
    "rechained_without_key": (_rechain_without_key, "hmac_mismatch"),
}


@pytest.mark.parametrize("case", sorted(TAMPERS))
def test_verify_when_tampered_then_first_bad_names_file_and_line(
    trail_copy: Path, case: str
) -> None:
    """Each tampering is caught at the file:line where it happened, with what happened."""
    tamper, code = TAMPERS[case]
    expected = tamper(trail_copy)
    result = verify(trail_copy, key=KEY)
    assert not result.ok
    assert (result.first_bad, result.problems[0].code) == (expected, code), result.problems


@pytest.mark.parametrize(
    "case",
    [
        "byte_edited",
        "line_deleted",
        "lines_swapped",
        "file_truncated",
        "rotated_file_removed",
        "first_file_removed",
        "line_appended_without_key",
    ],
)
def test_verify_when_tampered_and_no_key_then_still_caught(trail_copy: Path, case: str) -> None:
    """The chain alone catches these without the key (a keyed trail gaining an unkeyed
    line included)."""
    tamper, code = TAMPERS[case]
    expected = tamper(trail_copy)
    result = verify(trail_copy)
    assert not result.ok and result.first_bad == expected
    assert result.problems[0].code == code


def test_verify_when_lines_swapped_then_one_problem_saying_reordered(trail_copy: Path) -> None:
    """A swap is one problem, 'reordered', naming both lines; the rest of the chain holds."""
    expected = _swap_lines(trail_copy)
    result = verify(trail_copy, key=KEY)
    assert len(result.problems) == 1 and "reordered" in result.reason
    assert expected.replace(":21", ":22") in result.reason


def test_verify_when_key_wrong_then_hmac_mismatch_at_first_line(pristine: Path) -> None:
    """A wrong key fails at the first line and says how many records disagree."""
    result = verify(pristine, key=b"not-the-key-0123456789abcdef")
    assert result.first_bad == f"{files_of(pristine)[0].name}:1"
    assert len(result.problems) == 1 and f"({RECORDS} records)" in result.reason


def test_verify_when_whole_lines_cut_from_newest_file_then_anchor_catches_it(
    trail_copy: Path,
) -> None:
    """Cutting whole lines off the end leaves the chain consistent; a recorded head does not."""
    last = json.loads(lines_of(files_of(trail_copy)[-1])[-1])
    path = files_of(trail_copy)[-1]
    write_lines(path, lines_of(path)[:-2])
    assert verify(trail_copy, key=KEY).ok
    result = verify(trail_copy, key=KEY, anchor=(last["seq"], last["hash"]))
    assert not result.ok and result.problems[0].code == "anchor"
    assert f"before the anchor seq {RECORDS}" in result.reason


def test_verify_when_rechained_and_no_key_then_undetectable_which_is_why_keys_matter(
    trail_copy: Path,
) -> None:
    """Without the key a full re-chain looks intact: the documented reason to key trails."""
    _rechain_without_key(trail_copy)
    assert verify(trail_copy).ok
    assert not verify(trail_copy, key=KEY).ok


def test_verify_when_anchor_present_then_intact(pristine: Path) -> None:
    """An anchor the chain holds is accepted."""
    last = json.loads(lines_of(files_of(pristine)[-1])[-1])
    assert verify(pristine, key=KEY, anchor=(last["seq"], last["hash"])).ok


def test_verify_when_directory_missing_or_empty_then_audit_read_error(tmp_path: Path) -> None:
    """Nothing to check is unreadable input (exit 2), not an intact trail."""
    with pytest.raises(AuditReadError, match="not a directory"):
        verify(tmp_path / "absent")
    with pytest.raises(AuditReadError, match="no audit files"):
        verify(tmp_path)


def test_read_records_when_filtered_then_only_matching_in_order(pristine: Path) -> None:
    """Filters combine: time window [since, until), kinds, subject pattern, principal."""
    since, until = T0 + timedelta(seconds=200), T0 + timedelta(seconds=400)
    records = list(
        read_records(
            pristine, since=since, until=until, kinds={"order_checked"}, subject="account:acc-3"
        )
    )
    assert records and all(since <= r.at < until for r in records)
    assert {r.kind for r in records} == {"order_checked"}
    assert {r.subject for r in records} == {"account:acc-3"}
    assert [r.seq for r in records] == sorted(r.seq for r in records)
    refused = list(read_records(pristine, kinds=["auth_refused"], principal=None))
    assert len(refused) == len([n for n in range(1, RECORDS) if n % 97 == 0 and n % 10])
    assert all(r.location and ".jsonl:" in r.location for r in refused[:3])
    assert list(read_records(pristine, subject="account:*", principal="nobody")) == []


def test_read_records_when_line_unreadable_then_skipped_and_reported(trail_copy: Path) -> None:
    """`show` keeps reading past a damaged line and says where it was."""
    expected = _break_json(trail_copy)
    seen: list[str] = []
    count = sum(
        1 for _ in read_records(trail_copy, on_unreadable=lambda loc, why: seen.append(loc))
    )
    assert count == RECORDS - 1 and seen == [expected]
