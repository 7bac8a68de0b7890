"""Value checks of the config dataclasses: each section's ``validate()`` calls these.

Types are checked where a config is loaded (``pipeline.config``); these check the values a type
admits but the code cannot use (a batch of 0 images, a fraction of 1.5, a depth range upside down).
A failed check raises :class:`ConfigValueError` naming the field; the pipeline's loader turns it into
an error naming the full key (``data.batch_size``) and the file or ``--set`` that set it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any


class ConfigValueError(ValueError):
    """A config value outside what its field accepts.

    Attributes:
        field: The attribute of the section that raised (``"batch_size"``), dotted below it for a
            nested section (``"folder.root"``).
        expected: What the field accepts, e.g. ``"a value >= 1"``.
        value: The value found.
        related: Other fields the check compared it with (a ``--set`` of one of them is named as the
            source of the error too).
    """

    def __init__(self, field: str, expected: str, value: Any, related: tuple[str, ...] = ()) -> None:
        super().__init__(f"{field} expects {expected}, got {value!r}")
        self.field = field
        self.expected = expected
        self.value = value
        self.related = related


def _check(section: Any, names: tuple[str, ...], accepts: Callable[[Any], bool], expected: str) -> None:
    for name in names:
        value = getattr(section, name)
        if not accepts(value):
            raise ConfigValueError(name, expected, value)


def check_at_least(section: Any, minimum: float, *names: str) -> None:
    """Every field in ``names`` is ``>= minimum``."""
    _check(section, names, lambda value: value >= minimum, f"a value >= {minimum:g}")


def check_positive(section: Any, *names: str) -> None:
    """Every field in ``names`` is ``> 0``."""
    _check(section, names, lambda value: value > 0, "a value > 0")


def check_fraction(section: Any, *names: str) -> None:
    """Every field in ``names`` lies in ``[0, 1]``."""
    _check(section, names, lambda value: 0 <= value <= 1, "a value in [0, 1]")


def check_below_one(section: Any, *names: str) -> None:
    """Every field in ``names`` lies in ``[0, 1)`` (momentum, dropout)."""
    _check(section, names, lambda value: 0 <= value < 1, "a value in [0, 1)")


def check_order(section: Any, low: str, high: str, strict: bool = True) -> None:
    """Field ``high`` is above field ``low`` (``>=`` when not ``strict``)."""
    low_value, high_value = getattr(section, low), getattr(section, high)
    if high_value < low_value or (strict and high_value == low_value):
        relation = ">" if strict else ">="
        raise ConfigValueError(high, f"a value {relation} {low} ({low_value!r})", high_value, (low,))


def check_not_empty(section: Any, *names: str) -> None:
    """Every (string) field in ``names`` is not empty."""
    _check(section, names, lambda value: bool(value), "a non-empty value")
