"""Masking of secrets before anything is stored, logged or published.

Two rules: values of variables whose *names* look secret (`DB_PASSWORD=…`, `--api-token …`), and
values that *look like* credentials wherever they appear (AWS access key ids, JWTs, Slack and
GitHub tokens, private-key blocks, passwords in URLs). Names on the allowlist are left alone.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from batchlens.records import JobRecord

MASK = "****"

#: Parts of a variable name that mark its value as secret.
# A pattern of names, not a password:
_SECRET_WORDS = (
    r"(?:PASSW(?:OR)?D|PASSPHRASE|PWD|SECRET|TOKEN|API[_-]?KEY|ACCESS[_-]?KEY|PRIVATE[_-]?KEY"  # noqa: S105
    r"|CREDENTIAL|AUTH[_-]?KEY|SESSION[_-]?KEY|SIGNING[_-]?KEY|CLIENT[_-]?KEY)"
)
SECRET_NAME = r"[A-Za-z0-9_.-]*" + _SECRET_WORDS + r"[A-Za-z0-9_.-]*"

# Credential shapes, masked wherever they appear. Each pattern masks its whole match.
_CREDENTIAL_PATTERNS: tuple[re.Pattern[str], ...] = (
    re.compile(
        r"-----BEGIN [A-Z0-9 ]*PRIVATE KEY-----.*?(?:-----END [A-Z0-9 ]*PRIVATE KEY-----|$)",
        re.DOTALL,
    ),
    re.compile(r"\b(?:AKIA|ASIA|AGPA|AIDA|AROA|ANPA|ANVA|AIPA|ABIA|ACCA)[A-Z0-9]{16}\b"),
    re.compile(r"\beyJ[A-Za-z0-9_-]{5,}\.eyJ[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]{5,}"),
    re.compile(r"\bxox[abposr]-[A-Za-z0-9-]{10,}"),
    re.compile(r"https://hooks\.slack\.com/(?:services|workflows|triggers)/[A-Za-z0-9/_-]+"),
    re.compile(r"\bgh[pousr]_[A-Za-z0-9]{30,}\b"),
    re.compile(r"\bgithub_pat_[A-Za-z0-9_]{20,}\b"),
    re.compile(r"\bglpat-[A-Za-z0-9_-]{20,}\b"),
    re.compile(r"\bsk-[A-Za-z0-9_-]{20,}\b"),
)
# user:password@host in URLs: only the password is masked.
_URL_PASSWORD = re.compile(
    r"(?<![a-zA-Z0-9+.-])(?P<head>[a-zA-Z][a-zA-Z0-9+.-]*://[^\s:/@]+:)(?P<secret>[^\s@/]+)(?=@)"
)
# NAME=value, --name value, --name=value, "name": "value" with a secret-looking name. A bare
# "name: value" is prose too often ("registry auth: execution failed") to be masked. A match starts
# only where a name can start: trying every position inside a long token is quadratic.
_NAMED_VALUE = re.compile(
    r"(?<![A-Za-z0-9_.-])(?P<head>(?:(?P<flag>--?)(?P<fname>" + SECRET_NAME + r")(?:\s*=\s*|\s+)"
    r"|(?P<qname>[\"'](?:" + SECRET_NAME + r")[\"'])\s*:\s*"
    r"|(?P<name>" + SECRET_NAME + r")\s*=\s*)"
    r"[\"']?)(?P<secret>[^\s\"',;&]+)",
    re.IGNORECASE,
)
_SECRET_NAME = re.compile(r"^" + SECRET_NAME + r"$", re.IGNORECASE)


#: One scan that every secret above must trip (a superset of the patterns): a secret-looking
#: name, a credential prefix, a private-key header, or a URL with user info.
_MAYBE_SECRET = re.compile(
    _SECRET_WORDS + r"|PRIVATE KEY|AKIA|ASIA|AGPA|AIDA|AROA|ANPA|ANVA|AIPA|ABIA|ACCA"
    r"|eyJ|xox[abposr]-|hooks\.slack\.com|gh[pousr]_|github_pat_|glpat-|sk-|://[^\s/@]+:[^\s@/]+@",
    re.IGNORECASE,
)


class Redactor:
    """Masks secrets in text; counts what it masked."""

    def __init__(self, allowlist: Iterable[str] = ()) -> None:
        self._allow = frozenset(name.upper() for name in allowlist)

    def is_secret_name(self, name: str) -> bool:
        return name.upper() not in self._allow and bool(_SECRET_NAME.match(name))

    def text(self, value: str) -> tuple[str, int]:
        """Return `value` with secrets masked, and how many were masked."""
        if not _MAYBE_SECRET.search(value):
            return value, 0  # the common case: one cheap scan instead of every pattern
        count = 0

        def named(match: re.Match[str]) -> str:
            nonlocal count
            name = match.group("fname") or match.group("name") or match.group("qname").strip("\"'")
            if name.upper() in self._allow or match.group("secret") == MASK:
                return match.group(0)
            count += 1
            return match.group("head") + MASK

        def whole(_: re.Match[str]) -> str:
            nonlocal count
            count += 1
            return MASK

        def url(match: re.Match[str]) -> str:
            nonlocal count
            count += 1
            return match.group("head") + MASK

        for pattern in _CREDENTIAL_PATTERNS:
            value = pattern.sub(whole, value)
        value = _URL_PASSWORD.sub(url, value)
        value = _NAMED_VALUE.sub(named, value)
        return value, count

    def optional(self, value: str | None) -> tuple[str | None, int]:
        if not value:
            return value, 0
        return self.text(value)

    def redact_record(self, record: JobRecord) -> JobRecord:
        """Mask every free-text field of a record; `redacted` counts the masked values."""
        total = 0

        def clean(value: str | None) -> str | None:
            nonlocal total
            masked, count = self.optional(value)
            total += count
            return masked

        update: dict[str, Any] = {"status_reason": clean(record.status_reason)}
        update["attempts"] = [
            attempt.model_copy(
                update={
                    "reason": clean(attempt.reason),
                    "status_reason": clean(attempt.status_reason),
                }
            )
            for attempt in record.attempts
        ]
        if record.failure is not None:
            update["failure"] = record.failure.model_copy(
                update={
                    "summary": clean(record.failure.summary) or "",
                    "detail": clean(record.failure.detail) or "",
                }
            )
        if total == 0:
            return record
        update["redacted"] = record.redacted + total
        return record.model_copy(update=update)
