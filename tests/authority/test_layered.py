"""authority/layered.py: a mapping with one key changed equals the copied dict, without
copying a large one whole; old mappings read as they were."""

from __future__ import annotations

import ast
import pickle
import random
from collections.abc import Mapping

from bastion.engine.authority.layered import LAYER, SMALL, Layered, with_item


def test_with_item_when_many_changes_then_equal_to_the_copied_dicts_every_step() -> None:
    """Seeded changes (new keys and replaced ones) to a large mapping: each result equals
    `{**before, key: value}`, and every earlier result still equals what it was."""
    rng = random.Random(17)
    plain: dict[str, int] = {f"k{n}": n for n in range(SMALL + 50)}
    layered: Mapping[str, int] = dict(plain)
    history: list[tuple[Mapping[str, int], dict[str, int]]] = []
    for step in range(5 * LAYER):
        key = f"k{rng.randrange(SMALL + 120)}"
        plain = {**plain, key: step}
        layered = with_item(layered, key, step)
        history.append((layered, plain))
        assert layered == plain and plain == layered
        assert len(layered) == len(plain) and sorted(layered) == sorted(plain)
        assert layered.get(key) == step and key in layered and layered[key] == step
        assert layered.get("missing") is None and "missing" not in layered
    assert any(isinstance(m, Layered) for m, _ in history), "large mappings are layered"
    assert any(type(m) is dict for m, _ in history[LAYER:]), "the layer is folded"
    for made, expected in history:
        assert made == expected


def test_layered_when_pickled_or_shown_then_the_plain_dict() -> None:
    """Saved, sent or shown, a layered mapping is the plain dict it equals."""
    base = {f"k{n}": n for n in range(SMALL + 1)}
    made = with_item(base, "new", -1)
    assert isinstance(made, Layered)
    restored = pickle.loads(pickle.dumps(made))
    assert type(restored) is dict and restored == {**base, "new": -1}
    assert ast.literal_eval(repr(made)) == {**base, "new": -1}


def test_with_item_when_small_then_a_plain_dict() -> None:
    """A small mapping is simply copied (a plain dict, as before)."""
    assert with_item({"a": 1}, "b", 2) == {"a": 1, "b": 2}
    assert type(with_item({"a": 1}, "a", 3)) is dict
