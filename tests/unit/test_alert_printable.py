"""Alert texts stay printable and say what they show: a job's reasons with terminal escapes or
control characters, and the log heading of a card that had to drop lines."""

from __future__ import annotations

import json
import re
from collections.abc import Sequence

from batchlens import slack
from batchlens.alerts import build_alert, chatbot_body
from batchlens.events import parse_event
from batchlens.preview import with_log
from batchlens.records import JobRecord, normalise
from batchlens.redact import Redactor
from tests.conftest import Json, read_event, read_log, variant

#: What no plain-text email or chat card should carry raw: C0 controls but tab and line feed,
#: DEL and C1 controls, and the ESC that starts a terminal colour code.
_RAW_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def record_of(event: Json, log: Sequence[str] | None = None) -> JobRecord:
    record = normalise(parse_event(event))
    return with_log(record, "\n".join(log), 20, Redactor()) if log else record


def test_a_reason_with_control_characters_reaches_no_email_or_chat_text_raw() -> None:
    # Given a job terminated with a reason copied from a terminal: colour codes, a bell, a NUL
    reason = "Terminated by workflow: \x1b[31mERROR\x1b[0m step 3\x07 failed\x00"
    record = record_of(variant(read_event("job-failed-app-error"), statusReason=reason))

    # When its alert is built
    bodies = json.loads(build_alert(record).message)
    chat = json.loads(bodies["https"])

    # Then the email and the chat card say what happened, without the raw control characters
    texts = {
        "email": bodies["email"],
        "chat description": chat["content"]["description"],
        **{f"chat nextSteps[{i}]": s for i, s in enumerate(chat["content"].get("nextSteps", []))},
    }
    for where, text in texts.items():
        assert not _RAW_CONTROL.search(text), f"{where}: {text!r}"
    assert "ERROR step 3 failed" in bodies["email"]


def test_the_chat_log_heading_counts_the_lines_the_card_shows() -> None:
    # Given a failure whose long log lines cannot all fit the chat card's description
    log = [f"{i:02d} " + "x" * 390 for i in range(20)]
    record = record_of(read_event("job-failed-oom"), log)
    description = chatbot_body(record)["content"]["description"]

    # When the card drops the oldest lines to fit
    shown = description.split("```\n", 1)[1].rsplit("\n```", 1)[0].splitlines()
    assert 0 < len(shown) < len(record.log_excerpt or [])

    # Then its heading counts the lines it shows, not the ones it dropped
    assert f"Last {len(shown)} log lines" in description


def test_the_chat_log_heading_is_escaped_like_the_slack_one() -> None:
    # Given a log stream name (free text but ':' and '*') that reads as Slack mrkdwn
    event = read_event("job-failed-oom")
    event["detail"]["attempts"][-1]["container"]["logStreamName"] = "r&d/<!channel>/86165a4"
    record = record_of(event, read_log("job-failed-oom"))

    # When the chat card is rendered, then the heading cannot notify a channel
    description = chatbot_body(record)["content"]["description"]
    assert "r&amp;d/&lt;!channel&gt;/86165a4" in description
    assert "<!channel>" not in description


def _texts(value: object) -> list[str]:
    """Every string in a Block Kit payload."""
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [text for item in value.values() for text in _texts(item)]
    if isinstance(value, list):
        return [text for item in value for text in _texts(item)]
    return []


def test_a_reason_with_control_characters_reaches_no_slack_text_raw() -> None:
    # Given the same terminal-coloured reason, on a job whose attempt says it too
    reason = "Terminated by workflow: \x1b[31mERROR\x1b[0m step 3\x07 failed\x00"
    event = read_event("job-failed-app-error")
    event["detail"]["attempts"][-1]["statusReason"] = reason
    record = record_of(variant(event, statusReason=reason))

    # When its Slack card is rendered
    texts = _texts(slack.render(record))

    # Then no text of the card carries a raw control character, and the words are kept
    assert not [text for text in texts if _RAW_CONTROL.search(text)]
    assert any("ERROR step 3 failed" in text for text in texts)


def test_the_slack_log_heading_counts_the_lines_the_card_shows() -> None:
    # Given a failure whose log lines, once escaped for mrkdwn (`<` is `&lt;`), cannot all fit
    # one Slack section
    log = [f"{i:02d} " + "<td>" * 25 for i in range(20)]
    record = record_of(read_event("job-failed-oom"), log)

    # When the card drops the oldest lines to fit
    section = next(text for text in _texts(slack.render(record)) if text.startswith("*Last "))
    shown = section.split("```\n", 1)[1].rsplit("\n```", 1)[0].splitlines()
    assert 0 < len(shown) < len(record.log_excerpt or [])

    # Then its heading counts the lines it shows
    assert section.startswith(f"*Last {len(shown)} log lines")
