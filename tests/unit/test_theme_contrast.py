"""The app's themes as configured (.streamlit/config.toml) against WCAG 2.x contrast: a primary button writes white on
the primary colour, in the light and the dark theme (a newcomer read white on #6fa8dc, 2.5:1, in the dark one)."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

CONFIG = Path(__file__).resolve().parents[2] / ".streamlit" / "config.toml"
#: WCAG 2.x success criterion 1.4.3 (AA) for body text, and 1.4.11 for a control against what is around it.
TEXT_CONTRAST, CONTROL_CONTRAST = 4.5, 3.0


def relative_luminance(color: str) -> float:
    """WCAG 2.x relative luminance of ``#rrggbb``: 0.2126 R + 0.7152 G + 0.0722 B of the linearised sRGB channels."""
    value = color.lstrip("#")
    channels = [int(value[i : i + 2], 16) / 255 for i in (0, 2, 4)]
    linear = [c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4 for c in channels]
    return 0.2126 * linear[0] + 0.7152 * linear[1] + 0.0722 * linear[2]


def contrast(a: str, b: str) -> float:
    """(L1 + 0.05) / (L2 + 0.05), the lighter colour's luminance over the darker's."""
    high, low = sorted((relative_luminance(a), relative_luminance(b)), reverse=True)
    return (high + 0.05) / (low + 0.05)


def test_the_contrast_formula_matches_the_wcag_examples() -> None:
    assert contrast("#000000", "#ffffff") == pytest.approx(21.0)
    assert contrast("#777777", "#ffffff") == pytest.approx(4.48, abs=0.01)
    assert contrast("#6fa8dc", "#ffffff") == pytest.approx(2.53, abs=0.01)  # the dark theme's old primary colour


@pytest.mark.parametrize("theme", ["light", "dark"])
def test_primary_buttons_write_readable_white_text_and_stand_out(theme: str) -> None:
    colors = tomllib.loads(CONFIG.read_text(encoding="utf-8"))["theme"][theme]
    primary = colors["primaryColor"]
    assert contrast(primary, "#ffffff") >= TEXT_CONTRAST, primary
    assert contrast(primary, colors["backgroundColor"]) >= CONTROL_CONTRAST, primary
