"""The naive reference enricher: what most tutorials do, one event at a time.

Per event: DescribeJobs with one id, one PutItem of the raw job, one Publish of the raw event.
Kept only to be measured side by side with batchlens under the same workload and latency.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from mypy_boto3_batch import BatchClient
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_sns import SNSClient


class NaiveEnricher:
    def __init__(
        self,
        batch: BatchClient,
        dynamodb: DynamoDBClient,
        sns: SNSClient,
        table_name: str,
        topic_arn: str,
    ) -> None:
        self.batch, self.dynamodb, self.sns = batch, dynamodb, sns
        self.table_name, self.topic_arn = table_name, topic_arn

    def handle(self, body: str) -> None:
        event: dict[str, Any] = json.loads(body)
        detail = event["detail"]
        described = self.batch.describe_jobs(jobs=[detail["jobId"]]).get("jobs", [])
        job = described[0] if described else detail
        self.dynamodb.put_item(
            TableName=self.table_name,
            Item={
                "pk": {"S": f"JOB#{detail['jobId']}"},
                "sk": {"S": "LATEST"},
                "status": {"S": str(job.get("status", detail.get("status")))},
                "record": {"S": json.dumps(job, default=str)},
            },
        )
        self.sns.publish(TopicArn=self.topic_arn, Message=body)

    def process(self, bodies: list[str]) -> None:
        for body in bodies:
            self.handle(body)
