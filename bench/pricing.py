"""List prices (us-east-1, on-demand, no free tier) used by the cost projection.

Kept as named constants so the projection can be re-run when prices change. Sources: the AWS
pricing pages for Lambda, DynamoDB on-demand, SNS and Step Functions (Express workflows).
"""

LAMBDA_PER_GB_SECOND = 0.0000166667  # x86_64
LAMBDA_PER_MILLION_REQUESTS = 0.20
DYNAMODB_PER_MILLION_WRITE_UNITS = 0.625  # on-demand write request units
DYNAMODB_PER_MILLION_READ_UNITS = 0.125
SNS_PER_MILLION_PUBLISHES = 0.50  # per request: each 64 KB chunk of a Publish or a PublishBatch
STEP_FUNCTIONS_EXPRESS_PER_MILLION_REQUESTS = 1.00
STEP_FUNCTIONS_EXPRESS_PER_GB_SECOND = 0.00001667  # billed in 64 MB steps
SQS_PER_MILLION_REQUESTS = 0.40  # standard queue, 64 KB chunks
DYNAMODB_PER_GB_MONTH = 0.25  # Standard table class storage, indexes included
