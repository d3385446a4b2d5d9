"""The documented limits alert bodies must honour, written down independently of the renderers.

- Amazon Q Developer in chat applications, custom notifications ("Event schema" and "Parameter
  details"): `version` must be "1.0" and `source` must be "custom" (both required), `id` optional,
  `textType` optional and only "client-markdown" is supported; the schema's fields are exactly
  the ones below. The page states no length limits; the `maxLength`s here are batchlens's own
  caps (a card renders in chat blocks of about 3,000 characters) and are marked as such.
- Slack Block Kit (reference: blocks, block elements, composition objects): up to 50 blocks a
  message; a section's text up to 3,000 characters; up to 10 fields of 2,000 characters; a header's
  plain text up to 150; a button's text up to 75 and its URL up to 3,000; up to 25 elements in an
  actions block and 10 in a context block; block_id and action_id up to 255.
- Amazon SNS: a message, attributes included, up to 262,144 bytes; a subject of ASCII text that
  begins with a letter, number or punctuation mark, without line breaks or control characters,
  under 100 characters; a PublishBatch of up to 10 entries (TooManyEntriesInBatchRequest).
"""

from __future__ import annotations

import re
import string
from typing import Any

import jsonschema  # type: ignore[import-untyped]  # via cfn-lint (dev); no stubs

SNS_MAX_BYTES = 262_144
SNS_BATCH_MAX_ENTRIES = 10

_STRING = {"type": "string", "minLength": 1}
CHAT_NOTIFICATION_SCHEMA: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "type": "object",
    "required": ["version", "source", "content"],
    "additionalProperties": False,
    "properties": {
        "version": {"const": "1.0"},
        "source": {"const": "custom"},
        "id": _STRING,
        "content": {
            "type": "object",
            "required": ["description"],
            "additionalProperties": False,
            "properties": {
                "textType": {"const": "client-markdown"},
                "title": {**_STRING, "maxLength": 250},  # own cap
                "description": {**_STRING, "maxLength": 3_000},  # own cap
                "nextSteps": {"type": "array", "minItems": 1, "items": _STRING},
                "keywords": {
                    "type": "array",
                    "maxItems": 6,
                    "items": {**_STRING, "maxLength": 100},
                },
            },
        },
        "metadata": {
            "type": "object",
            "additionalProperties": False,
            "properties": {
                "threadId": _STRING,
                "summary": {**_STRING, "maxLength": 250},  # own cap
                # Also a valid custom-action NotificationType ([a-zA-Z0-9-]+).
                "eventType": {**_STRING, "pattern": "^[A-Za-z0-9-]+$"},
                "relatedResources": {
                    "type": "array",
                    "items": {"type": "string", "pattern": "^arn:aws[a-z-]*:"},
                },
                "additionalContext": {
                    "type": "object",
                    "additionalProperties": {"type": "string"},
                },
            },
        },
    },
}


def chat_problems(notification: Any) -> list[str]:
    """Every way `notification` breaks the custom-notification schema (empty when it is valid)."""
    validator = jsonschema.Draft202012Validator(CHAT_NOTIFICATION_SCHEMA)
    return [
        f"{'/'.join(str(p) for p in error.absolute_path) or '<root>'}: {error.message}"
        for error in validator.iter_errors(notification)
    ]


# --- Slack Block Kit ------------------------------------------------------------------------------

MAX_BLOCKS = 50
SECTION_TEXT_MAX = 3_000
FIELDS_MAX = 10
FIELD_TEXT_MAX = 2_000
HEADER_TEXT_MAX = 150
BUTTON_TEXT_MAX = 75
URL_MAX = 3_000
ACTIONS_MAX = 25
CONTEXT_MAX = 10
ID_MAX = 255
KNOWN_BLOCKS = {"header", "section", "actions", "context", "divider"}


def _text_problems(where: str, text: Any, limit: int, kinds: set[str]) -> list[str]:
    if not isinstance(text, dict) or text.get("type") not in kinds:
        return [f"{where}: a text object of type {sorted(kinds)} expected"]
    value = text.get("text")
    if not isinstance(value, str) or not value:
        return [f"{where}: empty text"]
    problems = []
    if len(value) > limit:
        problems.append(f"{where}: {len(value)} characters > {limit}")
    if text["type"] == "mrkdwn" and re.search(r"&(?!amp;|lt;|gt;)", value):
        problems.append(f"{where}: unescaped & in mrkdwn")
    return problems


def _block_problems(where: str, block: dict[str, Any]) -> list[str]:
    kind = block.get("type")
    problems: list[str] = []
    if kind not in KNOWN_BLOCKS:
        return [f"{where}: unknown block type {kind!r}"]
    if len(str(block.get("block_id", ""))) > ID_MAX:
        problems.append(f"{where}: block_id too long")
    if kind == "header":
        problems += _text_problems(
            f"{where}.text", block.get("text"), HEADER_TEXT_MAX, {"plain_text"}
        )
    elif kind == "section":
        if "text" not in block and "fields" not in block:
            problems.append(f"{where}: a section needs text or fields")
        if "text" in block:
            problems += _text_problems(
                f"{where}.text", block["text"], SECTION_TEXT_MAX, {"mrkdwn", "plain_text"}
            )
        fields = block.get("fields", [])
        if len(fields) > FIELDS_MAX:
            problems.append(f"{where}: {len(fields)} fields > {FIELDS_MAX}")
        for i, field in enumerate(fields):
            problems += _text_problems(
                f"{where}.fields[{i}]", field, FIELD_TEXT_MAX, {"mrkdwn", "plain_text"}
            )
    elif kind == "actions":
        elements = block.get("elements", [])
        if not 1 <= len(elements) <= ACTIONS_MAX:
            problems.append(f"{where}: {len(elements)} elements")
        for i, element in enumerate(elements):
            at = f"{where}.elements[{i}]"
            if element.get("type") != "button":
                problems.append(f"{at}: only buttons expected")
                continue
            problems += _text_problems(
                f"{at}.text", element.get("text"), BUTTON_TEXT_MAX, {"plain_text"}
            )
            url = element.get("url", "")
            if not isinstance(url, str) or not url.startswith("https://") or len(url) > URL_MAX:
                problems.append(f"{at}: url must be https and at most {URL_MAX} characters")
            if len(str(element.get("action_id", ""))) > ID_MAX:
                problems.append(f"{at}: action_id too long")
            if element.get("style") not in (None, "primary", "danger"):
                problems.append(f"{at}: bad style")
    elif kind == "context":
        elements = block.get("elements", [])
        if not 1 <= len(elements) <= CONTEXT_MAX:
            problems.append(f"{where}: {len(elements)} elements")
        for i, element in enumerate(elements):
            problems += _text_problems(
                f"{where}.elements[{i}]", element, SECTION_TEXT_MAX, {"mrkdwn", "plain_text"}
            )
    return problems


def block_kit_problems(payload: Any) -> list[str]:
    """Every way an incoming-webhook payload breaks Block Kit's limits (empty when it is valid)."""
    if not isinstance(payload, dict):
        return ["payload is not an object"]
    problems: list[str] = []
    if not isinstance(payload.get("text"), str) or not payload["text"]:
        problems.append("text: a notification fallback text is expected")
    blocks = list(payload.get("blocks", []))
    for a, attachment in enumerate(payload.get("attachments", [])):
        if not re.fullmatch(r"#[0-9A-Fa-f]{6}", str(attachment.get("color", ""))):
            problems.append(f"attachments[{a}].color: not a hex colour")
        blocks += attachment.get("blocks", [])
    if len(blocks) > MAX_BLOCKS:
        problems.append(f"{len(blocks)} blocks > {MAX_BLOCKS}")
    for i, block in enumerate(blocks):
        problems += _block_problems(f"blocks[{i}]", block)
    return problems


def subject_problems(subject: str) -> list[str]:
    problems = []
    if not subject.isascii():
        problems.append("not ASCII")
    if re.search(r"[\x00-\x1f\x7f]", subject):
        problems.append("line break or control character")
    if len(subject) >= 100:
        problems.append(f"{len(subject)} characters")
    if not subject or not (subject[0].isalnum() or subject[0] in string.punctuation):
        problems.append("does not begin with a letter, number or punctuation mark")
    return problems


def sns_batch_bytes(entries: list[dict[str, Any]]) -> int:
    """The bytes of a PublishBatch that count towards its 262,144: every entry's message and every
    part of every message attribute (name, type and value); and its subject, to be safe."""
    total = 0
    for entry in entries:
        total += len(entry["Message"].encode("utf-8")) + len(
            entry.get("Subject", "").encode("utf-8")
        )
        for name, attribute in entry.get("MessageAttributes", {}).items():
            parts = (name, attribute["DataType"], attribute.get("StringValue", ""))
            total += sum(len(part.encode("utf-8")) for part in parts)
    return total
