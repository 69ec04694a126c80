"""`extends`: overlay a policy on its base, keeping track of where each value came from.

Merge rules (documented in README "Overlays"): mappings merge key by key; a list
whose items all carry an `id` (or all a `name`) merges item by item on that key,
base order first, new items appended; any other list, and every scalar, is
replaced by the overlay's. `metadata` is always the overlay's own.
"""

from __future__ import annotations

from typing import Any

from bastion.engine.policy.yamlsource import Positions, pointer_join


def _list_key(*lists: list[Any]) -> str | None:
    for key in ("id", "name"):
        if all(isinstance(item, dict) and key in item for items in lists for item in items):
            return key
    return None


def _copy_positions(source: Positions, source_at: str, target: Positions, target_at: str) -> None:
    """Copy every position at or below `source_at` to the same place below `target_at`."""
    prefix = source_at + "/"
    for table, out in ((source.values, target.values), (source.keys, target.keys)):
        for pointer, location in table.items():
            if pointer == source_at or pointer.startswith(prefix):
                out[target_at + pointer[len(source_at) :]] = location
    for pointer in source.yaml11_bools:
        if pointer == source_at or pointer.startswith(prefix):
            target.yaml11_bools.add(target_at + pointer[len(source_at) :])


class _Merger:
    def __init__(self, base_positions: Positions, overlay_positions: Positions) -> None:
        self.base_positions = base_positions
        self.overlay_positions = overlay_positions
        self.out = Positions()

    def merge(self, base: Any, base_at: str, overlay: Any, overlay_at: str, out_at: str) -> Any:
        if isinstance(base, dict) and isinstance(overlay, dict):
            return self._merge_maps(base, base_at, overlay, overlay_at, out_at)
        if isinstance(base, list) and isinstance(overlay, list):
            key = _list_key(base, overlay)
            if key is not None:
                return self._merge_keyed(base, base_at, overlay, overlay_at, out_at, key)
        _copy_positions(self.overlay_positions, overlay_at, self.out, out_at)
        return overlay

    def _take_base(self, value: Any, base_at: str, out_at: str) -> Any:
        _copy_positions(self.base_positions, base_at, self.out, out_at)
        return value

    def _merge_maps(
        self,
        base: dict[str, Any],
        base_at: str,
        overlay: dict[str, Any],
        overlay_at: str,
        out_at: str,
    ) -> dict[str, Any]:
        self.out.values[out_at] = self.overlay_positions.locate(overlay_at)
        result: dict[str, Any] = {}
        for key in [*base, *(k for k in overlay if k not in base)]:
            child_out = pointer_join(out_at, key)
            child_base, child_overlay = pointer_join(base_at, key), pointer_join(overlay_at, key)
            if key in overlay and key in base:
                result[key] = self.merge(
                    base[key], child_base, overlay[key], child_overlay, child_out
                )
            elif key in overlay:
                _copy_positions(self.overlay_positions, child_overlay, self.out, child_out)
                result[key] = overlay[key]
            else:
                result[key] = self._take_base(base[key], child_base, child_out)
            if key in overlay and child_overlay in self.overlay_positions.keys:
                self.out.keys[child_out] = self.overlay_positions.keys[child_overlay]
            elif child_base in self.base_positions.keys:
                self.out.keys.setdefault(child_out, self.base_positions.keys[child_base])
        return result

    def _merge_keyed(
        self,
        base: list[Any],
        base_at: str,
        overlay: list[Any],
        overlay_at: str,
        out_at: str,
        key: str,
    ) -> list[Any]:
        self.out.values[out_at] = self.overlay_positions.locate(overlay_at)
        overlay_index = {item[key]: index for index, item in enumerate(overlay)}
        result: list[Any] = []
        for base_index, item in enumerate(base):
            out_child = pointer_join(out_at, len(result))
            base_child = pointer_join(base_at, base_index)
            if item[key] in overlay_index:
                index = overlay_index.pop(item[key])
                result.append(
                    self.merge(
                        item, base_child, overlay[index], pointer_join(overlay_at, index), out_child
                    )
                )
            else:
                result.append(self._take_base(item, base_child, out_child))
        for index, item in enumerate(overlay):
            if item[key] in overlay_index:
                out_child = pointer_join(out_at, len(result))
                _copy_positions(
                    self.overlay_positions, pointer_join(overlay_at, index), self.out, out_child
                )
                result.append(item)
        return result


def overlay(
    base: dict[str, Any],
    base_positions: Positions,
    top: dict[str, Any],
    top_positions: Positions,
) -> tuple[dict[str, Any], Positions]:
    """`top` merged onto `base`, and the positions of the result."""
    merger = _Merger(base_positions, top_positions)
    merged = merger.merge(base, "", top, "", "")
    merged["metadata"] = top["metadata"]
    _copy_positions(top_positions, "/metadata", merger.out, "/metadata")
    merged["extends"] = top["extends"]  # the base's own base was already applied
    return merged, merger.out
