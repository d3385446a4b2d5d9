"""Reads the stack's own `template.yaml`, so local tooling builds what the stack deploys.

This module owns the bridge from the SAM template to local stand-ins: the moto-backed tests and
the `make demo` stack create the history table, the queues and the rule pattern from the
template's definitions, never from a hand-kept copy that could drift. It is pure: no boto3, no
AWS calls, and PyYAML (a dev/CLI dependency, absent from the Lambda layer) is imported only when
a template is loaded.
"""

from __future__ import annotations

import copy
import functools
import os
import re
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import yaml
    from mypy_boto3_sqs.literals import QueueAttributeNameType

TEMPLATE_FILE = "template.yaml"
TABLE_ID = "HistoryTable"
EVENT_QUEUE_ID = "EventQueue"
RULE_ID = "BatchEventsRule"
FUNCTION_ID = "EnricherFunction"

#: CloudFormation short-form tags whose long form is `{"Fn::<Name>": value}`.
_FN_TAGS = (
    "Base64",
    "Cidr",
    "FindInMap",
    "GetAZs",
    "ImportValue",
    "Join",
    "Select",
    "Split",
    "Sub",
    "If",
    "Equals",
    "Not",
    "And",
    "Or",
)

#: SQS CreateQueue attributes that CloudFormation spells the same way as the API.
_QUEUE_ATTRIBUTES: tuple[QueueAttributeNameType, ...] = (
    "DelaySeconds",
    "MaximumMessageSize",
    "MessageRetentionPeriod",
    "ReceiveMessageWaitTimeSeconds",
    "VisibilityTimeout",
    "SqsManagedSseEnabled",
)


@functools.cache
def _template_loader() -> type[yaml.SafeLoader]:
    """A SafeLoader subclass that turns CloudFormation short-form tags into their long form."""
    # Imported here: PyYAML is a dev/CLI-only dependency, absent from the Lambda layer.
    import yaml

    def value_of(loader: yaml.SafeLoader, node: yaml.Node) -> Any:
        if isinstance(node, yaml.ScalarNode):
            return loader.construct_scalar(node)
        if isinstance(node, yaml.SequenceNode):
            return loader.construct_sequence(node, deep=True)
        if isinstance(node, yaml.MappingNode):
            return loader.construct_mapping(node, deep=True)
        raise TypeError(f"unexpected YAML node {node!r}")  # pragma: no cover - no other kind

    def long_form(key: str) -> Callable[[yaml.SafeLoader, yaml.Node], dict[str, Any]]:
        def construct(loader: yaml.SafeLoader, node: yaml.Node) -> dict[str, Any]:
            return {key: value_of(loader, node)}

        return construct

    def get_att(loader: yaml.SafeLoader, node: yaml.Node) -> dict[str, Any]:
        value = value_of(loader, node)
        # `!GetAtt Resource.Attribute` splits at the first dot only: attribute names may hold
        # dots themselves (`Endpoint.Address`).
        if isinstance(value, str):
            resource, _, attribute = value.partition(".")
            return {"Fn::GetAtt": [resource, attribute]}
        return {"Fn::GetAtt": value}

    class TemplateLoader(yaml.SafeLoader):
        """SafeLoader plus `!Ref`, `!GetAtt`, `!Sub` and the other intrinsic function tags."""

    TemplateLoader.add_constructor("!Ref", long_form("Ref"))
    TemplateLoader.add_constructor("!Condition", long_form("Condition"))
    TemplateLoader.add_constructor("!GetAtt", get_att)
    for name in _FN_TAGS:
        TemplateLoader.add_constructor(f"!{name}", long_form(f"Fn::{name}"))
    return TemplateLoader


def load_template(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Parse a CloudFormation/SAM YAML template, intrinsic short forms included."""
    with open(path, encoding="utf-8") as stream:
        loader = _template_loader()(stream)
        try:
            document = loader.get_single_data()
        finally:
            loader.dispose()
    if not isinstance(document, dict) or not isinstance(document.get("Resources"), dict):
        raise ValueError(f"{os.fspath(path)} is not a CloudFormation template (no Resources)")
    return document


def _is_repository_root(directory: Path) -> bool:
    # The layer's source beside the template tells batchlens' root from any other SAM project.
    return (directory / TEMPLATE_FILE).is_file() and (directory / "layers" / "batchlens").is_dir()


def default_template_path() -> Path:
    """`template.yaml` at the batchlens repository root, found upward from cwd, then this file."""
    starts = (Path.cwd().resolve(), Path(__file__).resolve().parent)
    for start in starts:
        for directory in (start, *start.parents):
            if _is_repository_root(directory):
                return directory / TEMPLATE_FILE
    searched = " and ".join(str(start) for start in starts)
    raise FileNotFoundError(
        f"no batchlens {TEMPLATE_FILE} found in {searched} or any parent directory; "
        "run from a checkout of the batchlens repository or pass the template path explicitly"
    )


def _properties(template: Mapping[str, Any], logical_id: str) -> dict[str, Any]:
    resources: Mapping[str, Any] = template.get("Resources", {})
    if logical_id not in resources:
        raise KeyError(f"template has no resource {logical_id!r}")
    properties: dict[str, Any] = resources[logical_id].get("Properties", {})
    return properties


def _literal(value: Any, where: str) -> Any:
    # Local stand-ins cannot resolve intrinsics; a value they need must be written out.
    if isinstance(value, dict) and len(value) == 1:
        key = next(iter(value))
        if key == "Ref" or key.startswith("Fn::"):
            raise ValueError(
                f"{where} is an intrinsic function ({key}); local tooling needs a literal"
            )
    return value


def table_create_kwargs(template: Mapping[str, Any], table_name: str) -> dict[str, Any]:
    """`dynamodb.create_table` keyword arguments for the history table, named `table_name`.

    Keys, attribute definitions, indexes and billing mode come from `HistoryTable`; SSE,
    point-in-time recovery and TTL are left out because they are separate API calls
    (see `table_ttl_attribute`).
    """
    properties = _properties(template, TABLE_ID)
    kwargs: dict[str, Any] = {"TableName": table_name}
    for key in (
        "AttributeDefinitions",
        "KeySchema",
        "GlobalSecondaryIndexes",
        "LocalSecondaryIndexes",
        "BillingMode",
    ):
        if key in properties:
            kwargs[key] = copy.deepcopy(_literal(properties[key], f"{TABLE_ID}.{key}"))
    return kwargs


def table_ttl_attribute(template: Mapping[str, Any]) -> str:
    """The history table's TTL attribute name (`expiresAt`)."""
    ttl = _properties(template, TABLE_ID).get("TimeToLiveSpecification")
    if not isinstance(ttl, dict) or not ttl.get("Enabled"):
        raise ValueError(f"{TABLE_ID} has no enabled TimeToLiveSpecification")
    return str(_literal(ttl["AttributeName"], f"{TABLE_ID}.TimeToLiveSpecification"))


def _attribute_string(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def queue_attributes(
    template: Mapping[str, Any], logical_id: str
) -> dict[QueueAttributeNameType, str]:
    """SQS CreateQueue `Attributes` for the queue `logical_id`, every value a string.

    Keys are typed with the SQS stubs' attribute names, so the result goes straight into
    `create_queue(Attributes=...)` under mypy.

    RedrivePolicy is left to the caller, which knows the local dead-letter queue's ARN; its
    `maxReceiveCount` comes from `max_receive_count`.
    """
    properties = _properties(template, logical_id)
    return {
        name: _attribute_string(_literal(properties[name], f"{logical_id}.{name}"))
        for name in _QUEUE_ATTRIBUTES
        if name in properties
    }


def max_receive_count(template: Mapping[str, Any]) -> int:
    """How many receives `EventQueue` allows before a message moves to the dead-letter queue."""
    redrive = _properties(template, EVENT_QUEUE_ID).get("RedrivePolicy")
    if not isinstance(redrive, dict) or "maxReceiveCount" not in redrive:
        raise ValueError(f"{EVENT_QUEUE_ID} has no RedrivePolicy.maxReceiveCount")
    return int(_literal(redrive["maxReceiveCount"], f"{EVENT_QUEUE_ID}.RedrivePolicy"))


def event_pattern(template: Mapping[str, Any]) -> dict[str, Any]:
    """The EventBridge pattern of `BatchEventsRule` (source and detail-types)."""
    pattern = _properties(template, RULE_ID).get("EventPattern")
    if not isinstance(pattern, dict):
        raise ValueError(f"{RULE_ID} has no EventPattern")
    return copy.deepcopy(pattern)


def parameter_defaults(template: Mapping[str, Any]) -> dict[str, str]:
    """Each template parameter's default as the string CloudFormation would pass."""
    parameters: Mapping[str, Any] = template.get("Parameters", {})
    return {
        name: _attribute_string(spec["Default"])
        for name, spec in parameters.items()
        if "Default" in spec
    }


def check_parameters(template: Mapping[str, Any], given: Mapping[str, str]) -> None:
    """Refuse what CloudFormation would: a parameter the template lacks, or a value outside its
    `AllowedValues` (each member of a list) or its `AllowedPattern` (which must match whole)."""
    specs: Mapping[str, Any] = template.get("Parameters", {})
    for name, value in given.items():
        if name not in specs:
            raise ValueError(f"template has no parameter {name!r}; it has {sorted(specs)}")
        spec = specs[name]
        # CloudFormation trims the spaces around each member of a list parameter.
        listed = "List" in str(spec.get("Type", ""))
        members = [m.strip() for m in str(value).split(",")] if listed else [str(value)]
        allowed = spec.get("AllowedValues")
        if allowed is not None and not set(members) <= {str(a) for a in allowed}:
            raise ValueError(f"{name}={value!r} is not one of {allowed}")
        pattern = spec.get("AllowedPattern")
        if pattern is not None and not all(re.fullmatch(pattern, m) for m in members):
            raise ValueError(f"{name}={value!r} does not match {pattern}")


def function_environment(
    template: Mapping[str, Any], logical_id: str = FUNCTION_ID
) -> dict[str, Any]:
    """The function's raw environment `Variables` (intrinsics unresolved), Globals merged in."""
    globals_: Mapping[str, Any] = template.get("Globals", {}).get("Function", {})
    variables: dict[str, Any] = copy.deepcopy(globals_.get("Environment", {}).get("Variables", {}))
    own = _properties(template, logical_id).get("Environment", {}).get("Variables", {})
    variables.update(copy.deepcopy(own))
    return variables


def resolve_environment(
    template: Mapping[str, Any],
    physical_ids: Mapping[str, str],
    parameters: Mapping[str, str] | None = None,
    logical_id: str = FUNCTION_ID,
) -> dict[str, str]:
    """The function's environment as a deployed stack would see it, for local runs.

    `!Ref` of a resource becomes its entry in `physical_ids` (e.g. the local table's name),
    `!Ref` of a parameter the value in `parameters` or else its template default, `!Join`
    joins (a CommaDelimitedList parameter is already its comma-joined string) and `!If` picks by
    its condition (`!Equals`, `!Not`, `!And`, `!Or` over those values). A reference to anything
    else raises `KeyError`, so a new variable cannot be silently left out.
    """
    check_parameters(template, parameters or {})
    values = {**parameter_defaults(template), **(parameters or {})}
    conditions: Mapping[str, Any] = template.get("Conditions", {})

    def holds(condition: Any, name: str) -> bool:
        if isinstance(condition, dict) and "Condition" in condition:
            return holds(conditions[condition["Condition"]], name)
        if isinstance(condition, dict) and "Fn::Equals" in condition:
            left, right = condition["Fn::Equals"]
            return resolve(left, name) == resolve(right, name)
        if isinstance(condition, dict) and "Fn::Not" in condition:
            return not holds(condition["Fn::Not"][0], name)
        if isinstance(condition, dict) and "Fn::And" in condition:
            return all(holds(part, name) for part in condition["Fn::And"])
        if isinstance(condition, dict) and "Fn::Or" in condition:
            return any(holds(part, name) for part in condition["Fn::Or"])
        raise ValueError(f"{name}: cannot evaluate condition {condition!r} locally")

    def resolve(value: Any, name: str) -> str:
        if isinstance(value, bool):
            return _attribute_string(value)
        if isinstance(value, str | int | float):
            return str(value)
        if isinstance(value, dict) and "Ref" in value:
            ref = value["Ref"]
            if ref in physical_ids:
                return physical_ids[ref]
            if ref in values:
                return values[ref]
            raise KeyError(f"{name}: no value for !Ref {ref} (pass it in physical_ids)")
        if isinstance(value, dict) and "Fn::Join" in value:
            separator, parts = value["Fn::Join"]
            if isinstance(parts, dict):  # !Join [",", !Ref SomeCommaDelimitedList]
                return resolve(parts, name)
            return str(separator).join(resolve(part, name) for part in parts)
        if isinstance(value, dict) and "Fn::If" in value:
            condition, when_true, when_false = value["Fn::If"]
            chosen = when_true if holds(conditions[condition], name) else when_false
            return resolve(chosen, name)
        raise ValueError(f"{name}: cannot resolve {value!r} locally")

    return {
        name: resolve(value, name)
        for name, value in function_environment(template, logical_id).items()
    }


def subscription_filter_policy(
    template: Mapping[str, Any], logical_id: str = "AlertEmailSubscription"
) -> dict[str, Any]:
    """The FilterPolicy of a topic subscription (the email one selects `alert=true`)."""
    policy = _properties(template, logical_id).get("FilterPolicy")
    if not isinstance(policy, dict):
        raise ValueError(f"{logical_id} has no FilterPolicy")
    return copy.deepcopy(policy)
