"""Slack notifier Lambda: SNS alerts (the JobRecord JSON) → a Block Kit card on an incoming webhook.

Subscribed to the alert topic with a filter on `alert=true`. The webhook URL comes from Secrets
Manager through Powertools Parameters (cached); an undeliverable message raises, so Lambda's
asynchronous retries run and then the event lands in the function's dead-letter queue.
"""

from __future__ import annotations

import time
from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.data_classes import SNSEvent, event_source
from aws_lambda_powertools.utilities.parameters import SecretsProvider
from aws_lambda_powertools.utilities.typing import LambdaContext

from batchlens import aws, slack, webhook
from batchlens.records import JobRecord
from batchlens.settings import Settings

logger = Logger(service="batchlens")
#: Stop retrying this long before the function's timeout, so the failure is clean.
DEADLINE_MARGIN_SECONDS = 5.0
_secrets: tuple[Settings, SecretsProvider] | None = None


def secrets() -> tuple[Settings, SecretsProvider]:
    """Settings and the Secrets Manager provider, built once per execution environment."""
    global _secrets  # noqa: PLW0603 - the per-cold-start singleton Lambda expects
    if _secrets is None:
        settings = Settings.from_env()
        _secrets = settings, SecretsProvider(boto3_client=aws.client("secretsmanager", settings))
    return _secrets


def webhook_url() -> str:
    settings, provider = secrets()
    value = provider.get(settings.slack_webhook_secret_arn, max_age=settings.slack_secret_max_age)
    if value is None:
        raise webhook.WebhookError("the webhook secret has no value")
    return webhook.url_from_secret(value)


@logger.inject_lambda_context
@event_source(data_class=SNSEvent)
def handler(event: SNSEvent, context: LambdaContext) -> dict[str, Any]:
    deadline = (
        time.monotonic() + context.get_remaining_time_in_millis() / 1000 - DEADLINE_MARGIN_SECONDS
    )
    url = webhook_url()
    delivered = []
    for record in event.records:
        job = JobRecord.model_validate_json(record.sns.message)
        result = webhook.post(url, slack.render(job), deadline=deadline)
        logger.info(
            "Posted to Slack",
            extra={"job_id": job.job_id, "status": job.status, "attempts": result.attempts},
        )
        delivered.append(job.job_id)
    return {"delivered": delivered}
