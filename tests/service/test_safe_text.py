"""Unkeepable text is found in a JSON body whatever way it is written."""

from __future__ import annotations

import pytest

from bastion.service.safe_text import body_problems


@pytest.mark.parametrize(
    ("body", "code_point"),
    [
        ('{"by": "eve\\u0000"}', "U+0000"),  # a \u escape of a control character
        ('{"by": "eve\\ud800"}', "U+D800"),  # a lone surrogate
        ('{"by": "eve\\n"}', "U+000A"),  # a short escape: a newline in a name
        ('{"by": "eve\\t"}', "U+0009"),
        ('{"by": "eve\x7f"}', "U+007F"),  # raw DEL: the JSON parser lets it through
        ('{"by": "eve\x85"}', "U+0085"),  # raw C1 (NEL)
    ],
)
def test_body_problems_when_text_cannot_be_kept_then_the_field_and_character_are_named(
    body: str, code_point: str
) -> None:
    """Every spelling of a control character or a lone surrogate is refused, naming the
    field and the code point (the in-process `Service` methods rely on this, not only the
    HTTP edge)."""
    problems = body_problems(body)
    assert [where for where, _ in problems] == ["by"]
    assert code_point in problems[0][1]


def test_body_problems_when_text_is_plain_then_nothing_is_parsed_or_reported() -> None:
    """Ordinary text (accents included) passes."""
    assert body_problems('{"by": "Zoë", "reason": "drawdown cleared"}') == []
