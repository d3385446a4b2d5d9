"""Masking of secrets before anything is stored, logged or published.

Two rules: values of variables whose *names* look secret (`DB_PASSWORD=…`, `--api-token …`), and
values that *look like* credentials wherever they appear (AWS access key ids, JWTs, Slack and
GitHub tokens, vendors' API keys, private-key blocks, passwords in URLs, URL signatures,
`Authorization:` credentials). Names on the allowlist are left alone.

Text (`Redactor.text`), records (`redact_record`), structured job detail (`deep`: environment
`{name, value}` pairs, parameters, command lines split into arguments) and log records (the
`RedactingFilter` that `guard_logger` puts on a logger) all go through the same two rules.
"""

from __future__ import annotations

import json
import logging
import re
import traceback
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from batchlens.records import JobRecord

MASK = "****"

#: Parts of a variable name that mark its value as secret.
# A pattern of names, not a password:
# `PASS` only where no letter follows (`DB_PASS`, `SMTP_PASS`; not `PASSED` or `PASSENGER`), and
# not as the end of a word that holds no password (`BYPASS_CACHE`, `COMPASS`, `OVERPASS_URL`).
# Those words are named rather than asking for a word boundary before `PASS`: glued names such as
# `ROOTPASS` and keytool's `-storepass` and `-keypass` are passwords.
_PASS = r"(?<!BY)(?<!COM)(?<!SUR)(?<!TRES)(?<!OVER)(?<!UNDER)PASS(?![A-Za-z])"  # noqa: S105
_SECRET_WORDS = (
    r"(?:PASSW(?:OR)?D|PASSPHRASE|" + _PASS + r"|PWD|SECRET|TOKEN|API[_-]?KEY|ACCESS[_-]?KEY"
    r"|PRIVATE[_-]?KEY|CREDENTIAL|AUTH[_-]?KEY|SESSION[_-]?KEY|SIGNING[_-]?KEY|CLIENT[_-]?KEY"
    r"|ENCRYPTION[_-]?KEY|HMAC[_-]?KEY|FERNET[_-]?KEY|MASTER[_-]?KEY)"
)
# A secret-looking name: one atomic run of name characters that holds a secret word. Only the
# whole run can be followed by `=`, a space or a quote, and backtracking into it (trying every
# shorter name, then failing) made one long run ("passwordpassword…", 100 KB) take many seconds.
_NAME_RUN = r"(?=[A-Za-z0-9_.-]*" + _SECRET_WORDS + r")[A-Za-z0-9_.-]++"

# Credential shapes, masked wherever they appear. Each pattern masks its whole match.
_CREDENTIAL_PATTERNS: tuple[re.Pattern[str], ...] = (
    re.compile(
        # "PRIVATE KEY BLOCK": OpenPGP's armour.
        r"-----BEGIN [A-Z0-9 ]*PRIVATE KEY(?: BLOCK)?-----"
        r".*?(?:-----END [A-Z0-9 ]*PRIVATE KEY(?: BLOCK)?-----|$)",
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
    re.compile(r"\b[rs]k_(?:live|test)_[A-Za-z0-9]{16,}\b"),  # Stripe secret and restricted keys
    re.compile(r"\bnpm_[A-Za-z0-9]{36}\b"),
    re.compile(r"\bAIza[0-9A-Za-z_-]{35}(?![0-9A-Za-z_-])"),  # Google API keys
)
# A presigned S3 URL (or a signed CloudFront one) grants access to whoever holds it until it
# expires: its signature goes, the rest of the URL stays readable.
_URL_SIGNATURE = re.compile(
    r"(?P<head>[?&](?:X-Amz-)?Signature=)(?P<secret>[A-Za-z0-9%~_.+/=-]{20,})", re.IGNORECASE
)
# `Authorization: Bearer …` (and Basic, token) in a logged header: the scheme stays, the
# credential goes. Prose ("authorization failed") has no scheme word after the separator.
_SCHEME_CREDENTIAL = r"(?:bearer|basic|token)\s+)(?P<secret>[A-Za-z0-9._~+/=-]+)"
_AUTHORIZATION = re.compile(
    r"(?P<head>\bauthorization\\?[\"']?\s*[:=]\s*\\?[\"']?" + _SCHEME_CREDENTIAL, re.IGNORECASE
)
# The value of a header mapping's `Authorization` key (`{"Authorization": "Bearer …"}`): the
# header's name is the key, which the text of the value no longer holds.
_AUTHORIZATION_VALUE = re.compile(r"(?P<head>\s*" + _SCHEME_CREDENTIAL, re.IGNORECASE)
# user:password@host in URLs: only the password is masked. The user may be empty
# (`redis://:password@host`, Redis's own form) or an e-mail address (`smtp://me@acme.com:…@…`),
# and the host follows the URL's last `@`, so an `@` left unescaped in either leaves no part of
# the password in the clear. The URL ends at a quote or comma for that (compact JSON, a list).
_URL_PASSWORD = re.compile(
    r"(?<![a-zA-Z0-9+.-])(?P<head>[a-zA-Z][a-zA-Z0-9+.-]*://[^\s:/\"',]*:)"
    # An `@` is the password's when another follows; the look-ahead stops at that next `@` (going
    # on to the last one made a run of `@` quadratic).
    r"(?P<secret>(?:[^\s@/]|@(?=[^\s/\"',@]*@))+)(?=@)"
)
# NAME=value, --name value, --name=value, "name": "value" with a secret-looking name. A bare
# "name: value" is prose too often ("registry auth: execution failed") to be masked. A match starts
# only where a name can start: trying every position inside a long token is quadratic. A quoted
# value is masked up to its closing quote (spaces included), also where the quotes are escaped
# (JSON inside a JSON log line); an unquoted one up to a space or a separator.
_NAMED_VALUE = re.compile(
    # `=` never takes a value from the next line: `DB_PASSWORD=` alone is set, but empty.
    r"(?<![A-Za-z0-9_.-])(?P<head>(?:(?P<flag>--?)(?P<fname>" + _NAME_RUN + r")"
    r"(?:[^\S\n]*=[^\S\n]*|\s+)"
    # `=>` as well as `=` and `:`: Ruby's and Perl's hashes (`{:password=>"x"}`).
    r"|(?P<qname>\\?[\"'](?:" + _NAME_RUN + r")\\?[\"']"
    # An environment variable quoted as JSON (`{"name": "DB_PASSWORD", "value": "…"}`, from a
    # container override or a task definition in a log): the secret name is the value of "name".
    r"|\\?[\"']name\\?[\"']\s*:\s*\\?[\"'](?P<pname>" + _NAME_RUN + r")\\?[\"']\s*,\s*"
    r"\\?[\"']value\\?[\"'])\s*(?::|=>)\s*"
    r"|(?P<name>" + _NAME_RUN + r")[^\S\n]*=>?[^\S\n]*)"
    r"(?P<quote>(?P<plain>[\"'])|\\(?P<escaped>[\"']))?)"
    # Inside quotes a backslash escapes the next character, and only the opening quote closes.
    r"(?P<secret>(?(plain)(?:\\.|(?!(?P=plain))[^\\\n])+"
    # Escaped quotes (JSON in JSON): in the inner text, four backslashes are one escaped backslash,
    # and three before the quote are an escaped quote.
    r"|(?(escaped)(?:\\\\\\\\|\\\\\\(?P=escaped)|\\(?!(?P=escaped)).|[^\\\n])+"
    # Unquoted after a quoted name: a JSON number or literal ends before its closing brackets (a
    # run of them that ends the token); anything else (a YAML value, a password with `]` or `}`
    # in it, `1]hunter2`) runs to a space or a separator, brackets included, so no part of it is
    # left in the clear. A flat list (`"api_keys": ["…", "…"]`, over lines too) is masked to its
    # closing bracket.
    r"|(?(qname)(?:\[[^\[\]]*\]|(?:-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?|true|false|null)"
    r"(?=[\s,]|$|[}\]]+(?![^\s\"',;&\\]))"
    r"|[^\s\"',;&]+)|[^\s\"',;&]+))))",
    re.IGNORECASE,
)
_SECRET_NAME = re.compile(r"^" + _NAME_RUN + r"$", re.IGNORECASE)
_SECRET_WORD = re.compile(_SECRET_WORDS, re.IGNORECASE)
#: Parts of names that hold a secret word but name no secret: counts of a language model's tokens
#: (`max_new_tokens`, a usage record's `"total_tokens": 42`) and tokenizer settings
#: (`TOKENIZERS_PARALLELISM`). Not the shell's `PWD`: an ODBC connection string's `Pwd=` is a
#: password.
_HARMLESS_PARTS = re.compile(
    r"(?:MAX|MIN|NUM|TOTAL|PROMPT|COMPLETION|INPUT|OUTPUT|NEW|CACHED|REASONING|GENERATED)"
    r"[_.-]?TOKENS|TOKENI[SZ][A-Z]*",
    re.IGNORECASE,
)
# A command-line flag on its own (`--password`), whose value is the next argument.
_FLAG = re.compile(r"--?(?P<name>[A-Za-z0-9_.-]+)")


#: The pre-scan: lower-case fragments of which every secret above contains at least one (a part of
#: a secret-looking name, a credential prefix, a URL's `://`). Plain substring searches of the
#: lower-cased text run about 15 times faster than one case-insensitive regex alternation, and most
#: text (every ordinary Batch reason) contains none, so it skips the patterns entirely.
_MAYBE_SECRET: tuple[str, ...] = (
    *("pass", "pwd", "secret", "token", "key", "credential"),
    *("akia", "asia", "agpa", "aida", "aroa", "anpa", "anva", "aipa", "abia", "acca"),
    *("eyj", "xox", "hooks.slack.com", "ghp_", "gho_", "ghu_", "ghs_", "ghr_", "github_pat_"),
    *("glpat-", "sk-", "://", "sk_live", "sk_test", "rk_live", "rk_test", "npm_", "aiza"),
    *("authorization", "signature="),
)


def maybe_secret(text: str) -> bool:
    """Could `text` hold a secret? False means certainly not (no pattern can match)."""
    lowered = text.lower()
    return any(fragment in lowered for fragment in _MAYBE_SECRET)


def _names_no_secret(name: str) -> bool:
    """Every secret word of `name` is part of a harmless one (`_HARMLESS_PARTS`)."""
    rest, found = _HARMLESS_PARTS.subn("_", name)
    return found > 0 and _SECRET_WORD.search(rest) is None


class Redactor:
    """Masks secrets in text; counts what it masked."""

    def __init__(self, allowlist: Iterable[str] = ()) -> None:
        self._allow = frozenset(name.upper() for name in allowlist)
        self._names: dict[str, bool] = {}  # the same few names (log fields, variables) recur

    def is_secret_name(self, name: str) -> bool:
        known = self._names.get(name)
        if known is None:
            # A tag or hyperparameter key can be namespaced (`acme:db-password`, `app/token`).
            last = name.rsplit("/", 1)[-1].rsplit(":", 1)[-1]
            known = (
                name.upper() not in self._allow
                and bool(_SECRET_NAME.match(last))
                and not _names_no_secret(last)
            )
            if len(self._names) < 4096:
                self._names[name] = known
        return known

    def text(self, value: str) -> tuple[str, int]:
        """Return `value` with secrets masked, and how many were masked."""
        if not maybe_secret(value):
            return value, 0  # the common case: one cheap scan instead of every pattern
        count = 0

        def named(match: re.Match[str]) -> str:
            nonlocal count
            quoted = match.group("qname")
            name = (
                match.group("fname")
                or match.group("name")
                or match.group("pname")
                or quoted.strip("\\\"'")
            )
            if (
                name.upper() in self._allow
                or match.group("secret") == MASK
                or _names_no_secret(name)
            ):
                return match.group(0)
            count += 1
            return match.group("head") + MASK

        def whole(_: re.Match[str]) -> str:
            nonlocal count
            count += 1
            return MASK

        def keep_head(match: re.Match[str]) -> str:
            nonlocal count
            if match.group("secret") == MASK:  # a token pattern masked it already
                return match.group(0)
            count += 1
            return match.group("head") + MASK

        for pattern in _CREDENTIAL_PATTERNS:
            value = pattern.sub(whole, value)
        value = _URL_PASSWORD.sub(keep_head, value)
        value = _AUTHORIZATION.sub(keep_head, value)
        value = _URL_SIGNATURE.sub(keep_head, value)
        value = _NAMED_VALUE.sub(named, value)
        return value, count

    def optional(self, value: str | None) -> tuple[str | None, int]:
        if not value:
            return value, 0
        return self.text(value)

    def value(self, name: str, value: str) -> tuple[str, int]:
        """A named value (an environment variable, a job parameter): masked whole when the name
        looks secret, else wherever it looks like a credential."""
        if value and value != MASK and self.is_secret_name(name):
            return MASK, 1
        # `Proxy-Authorization` and WSGI's `HTTP_AUTHORIZATION` too
        header = name.lower().endswith("authorization") and _AUTHORIZATION_VALUE.match(value)
        if header:
            masked, count = self.text(value[header.end() :])
            return header.group("head") + MASK + masked, count + 1
        return self._json_or_text(value)

    def command(self, args: Sequence[str]) -> tuple[list[str], int]:
        """A command line as a list of arguments: `["--password", "x"]` masks `x` too."""
        result: list[str] = []
        count = 0
        value_is_secret = False
        for arg in args:
            if value_is_secret and arg != MASK and not arg.startswith("-"):
                result.append(MASK)
                count += 1
                value_is_secret = False
                continue
            # An argument can be JSON (`--container-overrides '{"environment": […]}'`).
            masked, found = self._json_or_text(arg)
            result.append(masked)
            count += found
            flag = _FLAG.fullmatch(arg)
            value_is_secret = flag is not None and self.is_secret_name(flag.group("name"))
        return result, count

    def deep(self, value: Any) -> tuple[Any, int]:
        """A JSON-like value (a job detail, a logged event) with every secret masked.

        `{"name": N, "value": V}` pairs (environment variables) and mapping entries (parameters,
        `"password": …`) are masked by their name; lists of strings as command lines; a string
        holding a JSON object or list (an SQS message body) as that JSON; any other string as text.
        """
        if isinstance(value, str):
            return self._json_or_text(value)
        if isinstance(value, Mapping):
            name, pair_value = value.get("name"), value.get("value")
            result: dict[Any, Any] = {}
            count = 0
            for key, item in value.items():
                if key == "value" and isinstance(name, str) and isinstance(pair_value, str):
                    result[key], found = self.value(name, pair_value)
                elif key == "value" and isinstance(name, str) and _is_number(item):
                    result[key], found = self._scalar(name, item)  # `"value": 8471`
                elif isinstance(key, str) and isinstance(item, str):
                    result[key], found = self.value(key, item)
                elif _is_number(item) and isinstance(key, str):
                    result[key], found = self._scalar(key, item)  # `"password": 8471`
                elif isinstance(key, str) and _is_scalar_list(item) and self.is_secret_name(key):
                    # `"api_keys": ["…", "…"]`: each item, as a command line would keep them
                    masked = [self._scalar(key, part) for part in item]
                    result[key] = [part for part, _ in masked]
                    found = sum(count for _, count in masked)
                else:
                    result[key], found = self.deep(item)
                count += found
            return result, count
        if isinstance(value, list | tuple):
            if all(isinstance(item, str) for item in value):
                return self.command(value)
            items = [self.deep(item) for item in value]
            return [item for item, _ in items], sum(found for _, found in items)
        return value, 0

    def _scalar(self, name: str, value: str | float) -> tuple[Any, int]:
        """A number or a string under `name`: masked whole when the name looks secret, as text
        masks `"password": 8471`."""
        if value not in ("", MASK) and self.is_secret_name(name):
            return MASK, 1
        return self.value(name, value) if isinstance(value, str) else (value, 0)

    def _json_or_text(self, value: str) -> tuple[str, int]:
        stripped = value.lstrip()
        if stripped[:1] in ("{", "[") and maybe_secret(value):
            try:
                decoded = json.loads(value)
            except (ValueError, RecursionError):
                decoded = None
            if isinstance(decoded, dict | list):
                masked, count = self.deep(decoded)
                return (json.dumps(masked), count) if count else (value, 0)
        return self.text(value)

    def redact_record(self, record: JobRecord) -> JobRecord:
        """Mask every free-text field of a record; `redacted` counts the masked values."""
        # Every text is masked first, and copies are made only when one held a secret: most
        # records hold none, and are returned as they are.
        clean = Tally(self)
        status_reason = clean(record.status_reason)
        attempt_texts = [
            {"reason": clean(attempt.reason), "status_reason": clean(attempt.status_reason)}
            for attempt in record.attempts
        ]
        failure_texts: dict[str, str] | None = None
        if record.failure is not None:
            failure_texts = {
                "summary": clean(record.failure.summary) or "",
                "detail": clean(record.failure.detail) or "",
                # Next steps quote images, reasons and children's steps: free text too.
                "next_step": clean(record.failure.next_step) or "",
            }
        excerpt = [clean(line) or "" for line in record.log_excerpt or []]
        if clean.count == 0:
            return record
        update: dict[str, Any] = {"status_reason": status_reason}
        update["attempts"] = [
            attempt.model_copy(update=texts)
            for attempt, texts in zip(record.attempts, attempt_texts, strict=True)
        ]
        if record.failure is not None:
            update["failure"] = record.failure.model_copy(update=failure_texts)
        if record.log_excerpt:
            update["log_excerpt"] = excerpt
        update["redacted"] = record.redacted + clean.count
        return record.model_copy(update=update)


class Tally:
    """Masks texts one by one (None stays None) and counts what it masked."""

    def __init__(self, redactor: Redactor) -> None:
        self._redactor = redactor
        self.count = 0

    def __call__(self, value: str | None) -> str | None:
        masked, found = self._redactor.optional(value)
        self.count += found
        return masked


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _is_scalar_list(value: Any) -> bool:
    return isinstance(value, list | tuple) and all(
        isinstance(item, str) or _is_number(item) for item in value
    )


# --- logs ----------------------------------------------------------------------------------

#: Attributes every LogRecord has; anything else on a record came from `extra=`.
_LOG_RECORD_ATTRIBUTES = frozenset(
    vars(logging.LogRecord("", 0, "", 0, "", None, None)).keys() | {"message", "asctime"}
)


_WITHHELD = "(log message withheld: it could not be masked)"


class RedactedError(Exception):
    """Stands in for a logged exception whose text held a secret (the text, masked)."""


class RedactingFilter(logging.Filter):
    """Masks secrets in every record of the logger it guards: the message and its arguments
    (a logged event too), `extra` fields, and exception text.

    The last line of defence: code masks what it logs already, but a raw event logged by
    `POWERTOOLS_LOGGER_LOG_EVENT`, or an exception quoting its input, must not leak either.
    """

    def __init__(self, redactor: Redactor) -> None:
        super().__init__("batchlens.redact")
        self.redactor = redactor

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            self._mask(record)
        except Exception:  # never lose a log line to the filter: keep a masked placeholder
            record.msg, record.args = _WITHHELD, None
        return True

    def _mask(self, record: logging.LogRecord) -> None:
        if isinstance(record.msg, Mapping | list):
            record.msg = self.redactor.deep(record.msg)[0]
            if record.args:
                record.args = self.redactor.deep(record.args)[0]
        else:  # a format string, or any object logged as its text (an exception)
            if record.args:
                # As values first: an event's environment by name, a command by argument.
                args = self.redactor.deep(record.args)[0]
                record.args = tuple(args) if isinstance(record.args, tuple) else args
            try:
                message = record.getMessage()
            except Exception:  # arguments that do not fit the format: still mask the rest
                message = _WITHHELD
            record.msg, record.args = self.redactor.text(message)[0], None
        extras = {
            key: value
            for key, value in vars(record).items()
            if key not in _LOG_RECORD_ATTRIBUTES and isinstance(value, str | Mapping | list)
        }
        plain = [value for value in extras.values() if isinstance(value, str)]
        # One pre-scan of every plain field at once: most log lines have nothing to mask.
        if (
            len(plain) < len(extras)
            or any(self.redactor.is_secret_name(key) for key in extras)
            or maybe_secret("\n".join(plain))
        ):
            for key, value in extras.items():
                setattr(record, key, self.redactor.deep({key: value})[0][key])
        if record.exc_info and record.exc_info[1] is not None:
            text = "".join(traceback.format_exception(*record.exc_info))
            masked, count = self.redactor.text(text)
            if count:
                error = RedactedError(masked)
                record.exc_info, record.exc_text = (RedactedError, error, None), None


def guard_logger(logger: logging.Logger, redactor: Redactor | None = None) -> None:
    """Mask secrets in everything `logger` emits from now on (replacing an earlier guard)."""
    for existing in list(logger.filters):
        if isinstance(existing, RedactingFilter):
            logger.removeFilter(existing)
    logger.addFilter(RedactingFilter(redactor or Redactor()))
