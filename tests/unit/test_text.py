"""`text.printable`: what a job's free text may carry to a terminal, an email or a card."""

from __future__ import annotations

import pytest

from batchlens.text import printable


@pytest.mark.parametrize(
    ("raw", "shown"),
    [
        ("\x1b[31mERROR\x1b[0m done", "ERROR done"),  # 7-bit CSI: colours
        ("\x1b]0;owned\x07title", "title"),  # 7-bit OSC: the window title
        ("\x9b31mERROR\x9b0m done", "ERROR done"),  # 8-bit CSI (U+009B)
        ("\x9d8;;https://evil.example\x9clink\x9d8;;\x9c", "link"),  # 8-bit OSC 8 hyperlink
        ("bell\x07 nul\x00 del\x7f", "bell nul del"),  # C0 and DEL
        ("next\x85line \x90dcs\x9c", "nextline dcs"),  # lone C1 controls: NEL, DCS, ST
    ],
)
def test_escapes_and_controls_are_removed(raw: str, shown: str) -> None:
    assert printable(raw) == shown


def test_text_and_layout_survive() -> None:
    # Given text in several scripts, with tabs and line feeds: nothing in it is a control
    text = "café naïve\tÅngström\nジョブ失敗 🚀 — “quoted” ¡sí! ÿ \u00a0nbsp"

    # Then it passes through unchanged
    assert printable(text) == text
