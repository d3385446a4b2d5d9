"""Text from a job (its reasons, its log) made safe to show: no terminal escapes, no controls.

A `TerminateJob` reason and a log line are free text, often copied from a terminal: colour codes,
a bell, a NUL. Shown raw they garble an email or a chat card, and printed by the CLI they drive
the reader's terminal. Standard library only, so the CLI's output path stays light.
"""

from __future__ import annotations

import re

#: Every ECMA-48 escape: CSI (`ESC [ … m`, colours), OSC (`ESC ] … BEL`, titles and links) and
#: two- or three-character ones such as `tput sgr0`'s `ESC ( B`, whose stray `(B` between a
#: secret's name and its `=` would keep the value from being masked.
#: The 8-bit forms too: CSI as U+009B and OSC as U+009D, which some terminals obey in UTF-8.
_ESCAPE = re.compile(
    r"\x1b(?:\[[0-?]*[ -/]*[@-~]|\][^\x07\x1b]*(?:\x07|\x1b\\)|[ -/]*[0-~])"
    r"|\x9b[0-?]*[ -/]*[@-~]|\x9d[^\x07\x1b\x9c\x9d]*(?:\x07|\x9c|\x1b\\)"
)
#: C0 controls but tab and line feed, DEL and the C1 controls (an escape's lone ESC included).
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def printable(text: str) -> str:
    """`text` without terminal escapes and control characters (tab and line feed kept)."""
    return _CONTROL.sub("", _ESCAPE.sub("", text))
