"""Real-shaped AWS Batch failure evidence, one row per case, for the failures tests.

Each row names where its message shape comes from. Instance ids, account ids, image names and
byte counts are made up; the stable part of each message is the one AWS (or the tool) writes.
"""

from __future__ import annotations

from dataclasses import dataclass

from batchlens.failures import (
    AttemptFacts,
    ExitRule,
    FailureCategory,
    JobFacts,
    RetryStrategy,
)

C = FailureCategory
JOB = "JOB_STATE_CHANGE"
SERVICE = "SERVICE_JOB_STATE_CHANGE"
BLOCKED = "JOB_QUEUE_BLOCKED"
SERVICE_BLOCKED = "SERVICE_JOB_QUEUE_BLOCKED"
ESSENTIAL = "Essential container in task exited"
OOM = "OutOfMemoryError: Container killed due to memory usage"
ECR = "123456789012.dkr.ecr.us-east-1.amazonaws.com"


@dataclass(frozen=True, slots=True)
class Case:
    id: str
    source: str  # where the message shape comes from
    facts: JobFacts
    category: FailureCategory
    retryable: bool
    batch_will_retry: bool
    summary_has: tuple[str, ...] = ()
    detail_has: tuple[str, ...] = ()
    next_step_has: tuple[str, ...] = ()


def tries(n: int) -> RetryStrategy:
    return RetryStrategy(attempts=n)


def ended(
    *attempts: AttemptFacts,
    status_reason: str | None = None,
    retry_strategy: RetryStrategy | None = None,
    memory_mib: int | None = None,
    image: str | None = None,
    timeout_seconds: int | None = None,
    is_terminated: bool = False,
) -> JobFacts:
    """A FAILED container job; its statusReason repeats the latest attempt's unless given."""
    if status_reason is None and attempts:
        status_reason = attempts[-1].status_reason
    return JobFacts(
        event_type=JOB,
        status="FAILED",
        status_reason=status_reason,
        attempts=attempts,
        retry_strategy=retry_strategy,
        memory_mib=memory_mib,
        image=image,
        timeout_seconds=timeout_seconds,
        is_terminated=is_terminated,
    )


CASES: tuple[Case, ...] = (
    # --- OUT_OF_MEMORY -------------------------------------------------------------------------
    Case(
        "ecs-oom-attempts-exhausted",
        "ECS stopped-task error 'OutOfMemoryError: Container killed due to memory usage' "
        "(AWS Batch troubleshooting docs; Metaflow/Nextflow reports)",
        ended(
            *(AttemptFacts(ESSENTIAL, OOM, 137) for _ in range(3)),
            retry_strategy=tries(3),
            memory_mib=4096,
        ),
        C.OUT_OF_MEMORY,
        retryable=False,
        batch_will_retry=False,
        summary_has=("4096 MiB", "attempt 3/3"),
        detail_has=("exit code 137 (SIGKILL)", "attempts exhausted 3/3"),
        next_step_has=("4096 MiB",),
    ),
    Case(
        "ecs-oom-linebreaks-mixed-case",
        "ECS OutOfMemoryError, as pasted with wrapped lines and changed case",
        ended(
            AttemptFacts(
                ESSENTIAL, "outofmemoryERROR:\n  Container killed due\tto memory usage", 137
            ),
            memory_mib=512,
        ),
        C.OUT_OF_MEMORY,
        retryable=False,
        batch_will_retry=False,
        summary_has=("512 MiB",),
    ),
    Case(
        "eks-oomkilled",
        "Kubernetes container termination reason 'OOMKilled' (Batch on EKS eksAttempts.containers)",
        ended(AttemptFacts(None, "OOMKilled", 137), memory_mib=2048),
        C.OUT_OF_MEMORY,
        retryable=False,
        batch_will_retry=False,
        summary_has=("2048 MiB",),
    ),
    Case(
        "ecs-oom-retried",
        "ECS OutOfMemoryError on the first of two attempts (job back in RUNNABLE)",
        JobFacts(
            event_type=JOB,
            status="RUNNABLE",
            attempts=(AttemptFacts(ESSENTIAL, OOM, 137),),
            retry_strategy=tries(2),
            memory_mib=1024,
        ),
        C.OUT_OF_MEMORY,
        retryable=False,
        batch_will_retry=True,
        summary_has=("attempt 1/2 failed", "1024 MiB", "Batch is retrying"),
    ),
    # --- HOST_TERMINATED -----------------------------------------------------------------------
    Case(
        "host-ec2-terminated-exhausted",
        "AWS Batch statusReason 'Host EC2 (instance i-…) terminated.' (calypr/funnel#973)",
        ended(
            *(
                AttemptFacts("Host EC2 (instance i-0e234208f6fc9291f) terminated.")
                for _ in range(3)
            ),
            retry_strategy=tries(3),
        ),
        C.HOST_TERMINATED,
        retryable=True,
        batch_will_retry=False,
        summary_has=("i-0e234208f6fc9291f", "attempt 3/3"),
        # No rule matched, so Batch retried every reclaim: only more attempts help
        next_step_has=("retryStrategy.attempts (now 3)",),
    ),
    Case(
        "host-ec2-terminated-retried",
        "AWS Batch Spot reclaim 'Host EC2 (instance i-…) terminated.', Batch retrying",
        JobFacts(
            event_type=JOB,
            status="RUNNABLE",
            attempts=(
                AttemptFacts("Host EC2 (instance i-0abc123def4567890) terminated.", None, 143),
            ),
            retry_strategy=tries(3),
        ),
        C.HOST_TERMINATED,
        retryable=True,
        batch_will_retry=True,
        summary_has=("attempt 1/3 failed", "i-0abc123def4567890", "Batch is retrying"),
        detail_has=("Batch will retry: no evaluateOnExit rule matched (attempt 1/3)",),
    ),
    Case(
        "host-ec2-stopped-exit-1",
        "AWS Batch/ECS stoppedReason 'Host EC2 (instance id) stopped/terminated' (ECS docs)",
        ended(AttemptFacts("Host EC2 (instance i-0123456789abcdef0) stopped.", None, 1)),
        C.HOST_TERMINATED,
        retryable=True,
        batch_will_retry=False,
        summary_has=("i-0123456789abcdef0 was stopped",),
    ),
    Case(
        "host-ec2-terminated-old-shape",
        "'Status Reason: Host EC2 Terminated' (azavea/raster-vision-aws#15)",
        ended(AttemptFacts("Host EC2 Terminated", None, None)),
        C.HOST_TERMINATED,
        retryable=True,
        batch_will_retry=False,
    ),
    Case(
        "fargate-spot-interrupted",
        "Fargate Spot stoppedReason 'Your Spot Task was interrupted.' (ECS task state events)",
        ended(AttemptFacts("Your Spot Task was interrupted.", None, 143), retry_strategy=tries(1)),
        C.HOST_TERMINATED,
        retryable=True,
        batch_will_retry=False,
        summary_has=("Spot",),
        next_step_has=("Your Spot Task was interrupted*",),
    ),
    # --- TIMEOUT -------------------------------------------------------------------------------
    Case(
        "attempt-timeout-137",
        "AWS Batch job timeouts doc: 'Job attempt duration exceeded timeout' (EC 137)",
        ended(
            AttemptFacts("Job attempt duration exceeded timeout", None, 137),
            retry_strategy=tries(3),
            timeout_seconds=3600,
        ),
        C.TIMEOUT,
        retryable=False,
        batch_will_retry=False,
        summary_has=("3600 s", "attempt 1/3"),
        detail_has=("timeouts are never retried",),
        next_step_has=("timeout",),
    ),
    Case(
        "attempt-timeout-terminated-flag",
        "Timeout reason alongside isTerminated: the timeout is what the user must fix",
        ended(
            AttemptFacts("Job attempt duration exceeded timeout", None, 143),
            is_terminated=True,
        ),
        C.TIMEOUT,
        retryable=False,
        batch_will_retry=False,
    ),
    # --- IMAGE_PULL ----------------------------------------------------------------------------
    Case(
        "ecr-manifest-not-found",
        "ECS CannotPullContainerError 'manifest for … not found: manifest unknown' (ECS docs)",
        ended(
            AttemptFacts(
                "Task failed to start",
                f"CannotPullContainerError: Error response from daemon: manifest for {ECR}/app:v2 "
                "not found: manifest unknown: Requested image not found",
            ),
        ),
        C.IMAGE_PULL,
        retryable=False,
        batch_will_retry=False,
        summary_has=(f"{ECR}/app:v2", "not found"),
        next_step_has=("image name and tag",),
    ),
    Case(
        "dockerhub-toomanyrequests",
        "CannotPullContainerError '429 Too Many Requests … toomanyrequests' (Docker Hub rate "
        "limit, ECS docs and Nextflow reports)",
        ended(
            AttemptFacts(
                "Task failed to start",
                "CannotPullContainerError: inspect image has been retried 5 time(s): "
                "httpReaderSeeker: failed open: unexpected status code "
                "https://registry-1.docker.io/v2/library/python/manifests/3.12: 429 Too Many "
                "Requests - Server message: toomanyrequests: You have reached your pull rate "
                "limit.",
            ),
            image="python:3.12",
        ),
        C.IMAGE_PULL,
        retryable=True,
        batch_will_retry=False,
        summary_has=("python:3.12", "toomanyrequests"),
    ),
    Case(
        "ecr-pull-access-denied",
        "CannotPullContainerError 'pull access denied for …, repository does not exist or may "
        "require docker login' (ECS docs)",
        ended(
            AttemptFacts(
                "Task failed to start",
                f"CannotPullContainerError: Error response from daemon: pull access denied for "
                f"{ECR}/missing-repo, repository does not exist or may require 'docker login': "
                "denied: requested access to the resource is denied",
            ),
        ),
        C.IMAGE_PULL,
        retryable=False,
        batch_will_retry=False,
        summary_has=(f"{ECR}/missing-repo",),
    ),
    Case(
        "ecr-pull-io-timeout",
        "CannotPullContainerError '… dial tcp …:443: i/o timeout' (private subnet, no NAT)",
        ended(
            AttemptFacts(
                "Task failed to start",
                f"CannotPullContainerError: Error response from daemon: Get https://{ECR}/v2/: "
                "dial tcp 52.94.1.1:443: i/o timeout",
            ),
            image=f"{ECR}/app:v2",
        ),
        C.IMAGE_PULL,
        retryable=True,
        batch_will_retry=False,
        summary_has=("timed out",),
    ),
    Case(
        "pull-no-space-left",
        "CannotPullContainerError 'write /var/lib/docker/tmp/GetImageBlob…: no space left on "
        "device' (ECS docs)",
        ended(
            AttemptFacts(
                "Task failed to start",
                "CannotPullContainerError: write /var/lib/docker/tmp/GetImageBlob338112204: "
                "no space left on device",
            ),
            image="ghcr.io/acme/aligner:1.4",
        ),
        C.IMAGE_PULL,
        retryable=True,
        batch_will_retry=False,
        summary_has=("ghcr.io/acme/aligner:1.4", "no space left on device"),
    ),
    Case(
        "fargate-failed-to-resolve-ref",
        "Fargate CannotPullContainerError 'pull image manifest has been retried 5 time(s): "
        "failed to resolve ref …: not found' (ECS docs)",
        ended(
            AttemptFacts(
                "Task failed to start",
                "CannotPullContainerError: pull image manifest has been retried 5 time(s): failed "
                "to resolve ref docker.io/library/pyhton:3.12: docker.io/library/pyhton:3.12: "
                "not found",
            ),
        ),
        C.IMAGE_PULL,
        retryable=False,
        batch_will_retry=False,
        summary_has=("docker.io/library/pyhton:3.12 not found",),
    ),
    Case(
        "eks-err-image-pull",
        "Kubernetes waiting reason 'ErrImagePull' (Batch on EKS containers[j].reason)",
        ended(AttemptFacts(None, "ErrImagePull", None), image="acme/trainer:9"),
        C.IMAGE_PULL,
        retryable=False,
        batch_will_retry=False,
        summary_has=("acme/trainer:9",),
        # On EKS nodes the kubelet pulls with the node IAM role; there is no execution role
        # (Amazon ECR user guide, "Using Amazon ECR Images with Amazon EKS")
        next_step_has=("node IAM role",),
    ),
    Case(
        "pull-timeout-retried",
        "CannotPullContainerError 'net/http: request canceled while waiting for connection "
        "(Client.Timeout exceeded while awaiting headers)' (ECS docs), Batch retrying",
        JobFacts(
            event_type=JOB,
            status="RUNNABLE",
            attempts=(
                AttemptFacts(
                    "Task failed to start",
                    f"CannotPullContainerError: Error response from daemon: Get https://{ECR}/v2/"
                    ": net/http: request canceled while waiting for connection (Client.Timeout "
                    "exceeded while awaiting headers)",
                ),
            ),
            retry_strategy=tries(2),
        ),
        C.IMAGE_PULL,
        retryable=True,
        batch_will_retry=True,
        summary_has=("attempt 1/2 failed", "Batch is retrying"),
    ),
    Case(
        "pull-error-exit-rule-exit",
        "CannotPullContainerError with evaluateOnExit {onReason: 'CannotPullContainerError*', "
        "action: EXIT} (AWS Batch automated job retries doc)",
        ended(
            AttemptFacts(
                "Task failed to start",
                f"CannotPullContainerError: Error response from daemon: manifest for {ECR}/app:v3 "
                "not found: manifest unknown: Requested image not found",
            ),
            retry_strategy=RetryStrategy(
                attempts=3,
                evaluate_on_exit=(ExitRule("EXIT", on_reason="CannotPullContainerError*"),),
            ),
        ),
        C.IMAGE_PULL,
        retryable=False,
        batch_will_retry=False,
        detail_has=("exit rule `onReason CannotPullContainerError*` matched (EXIT)",),
    ),
    # --- CONTAINER_START -----------------------------------------------------------------------
    Case(
        "exec-not-found-in-path",
        'CannotStartContainerError \'OCI runtime create failed … exec: "python": executable '
        "file not found in $PATH' (ECS CannotStartContainerError docs)",
        ended(
            AttemptFacts(
                "Task failed to start",
                "CannotStartContainerError: Error response from daemon: OCI runtime create "
                "failed: container_linux.go:380: starting container process caused: exec: "
                '"python": executable file not found in $PATH: unknown',
                128,
            ),
        ),
        C.CONTAINER_START,
        retryable=False,
        batch_will_retry=False,
        summary_has=('"python"', "$PATH"),
    ),
    Case(
        "task-failed-to-start-only",
        "AWS Batch statusReason 'Task failed to start' with no container reason",
        ended(AttemptFacts("Task failed to start")),
        C.CONTAINER_START,
        retryable=False,
        batch_will_retry=False,
    ),
    Case(
        "log-driver-log-group-missing",
        "'CannotStartContainerError: Error response from daemon: failed to initialize logging "
        "driver: failed to create Cloudwatch log stream: ResourceNotFoundException: The specified "
        "log group does not exist.' (prakhar1989/docker-curriculum#253, "
        "cn-terraform/terraform-aws-nexus#35)",
        ended(
            AttemptFacts(
                "Task failed to start",
                "CannotStartContainerError: Error response from daemon: failed to initialize "
                "logging driver: failed to create Cloudwatch log stream: "
                "ResourceNotFoundException: The specified log group does not exist.",
            )
        ),
        C.CONTAINER_START,
        retryable=False,
        batch_will_retry=False,
        summary_has=("CloudWatch Logs driver — log group not found",),
        next_step_has=("Create the log group",),
    ),
    Case(
        "log-driver-no-route",
        "'CannotStartContainerError: … failed to initialize logging driver: failed to create "
        "Cloudwatch log stream: RequestError: send request failed caused by: Post "
        "https://logs.…/: dial tcp …: i/o timeout' on AWS Batch (seqeralabs/nf-tower#305)",
        ended(
            AttemptFacts(
                "Task failed to start",
                "CannotStartContainerError: Error response from daemon: failed to initialize "
                "logging driver: failed to create Cloudwatch log stream: RequestError: send "
                "request failed\ncaused by: Post https://logs.us-east-2.amazonaws.com/: dial "
                "tcp 10.20.10.16:443: i/o timeout",
            )
        ),
        C.CONTAINER_START,
        retryable=False,
        batch_will_retry=False,
        summary_has=("CloudWatch Logs driver — timed out",),
        next_step_has=("CloudWatch Logs",),
    ),
    Case(
        "log-driver-syslog-refused",
        "'CannotStartContainerError: Error response from daemon: failed to initialize logging "
        "driver: dial tcp 127.0.0.1:514: connect: connection refused' (syslog driver, "
        "komoju/barcelona#582)",
        ended(
            AttemptFacts(
                "Task failed to start",
                "CannotStartContainerError: Error response from daemon: failed to initialize "
                "logging driver: dial tcp 127.0.0.1:514: connect: connection refused",
            )
        ),
        C.CONTAINER_START,
        retryable=False,
        batch_will_retry=False,
        summary_has=("log driver could not start",),
        next_step_has=("logConfiguration",),
    ),
    Case(
        "eks-container-cannot-run",
        "Kubernetes termination reason 'ContainerCannotRun' (Batch on EKS)",
        ended(AttemptFacts(None, "ContainerCannotRun", 128)),
        C.CONTAINER_START,
        retryable=False,
        batch_will_retry=False,
    ),
    # --- RESOURCE_INITIALIZATION ---------------------------------------------------------------
    Case(
        "fargate-secrets-context-deadline",
        "Fargate 'ResourceInitializationError: unable to pull secrets or registry auth: … "
        "context deadline exceeded' (ECS docs; private subnet without endpoints)",
        ended(
            AttemptFacts(
                "Task failed to start",
                "ResourceInitializationError: unable to pull secrets or registry auth: execution "
                "resource retrieval failed: unable to retrieve secret from asm: service call has "
                "been retried 5 time(s): failed to fetch secret "
                "arn:aws:secretsmanager:us-east-1:123456789012:secret:db-AbCdEf from secrets "
                "manager: RequestCanceled: request context canceled\ncaused by: context deadline "
                "exceeded. Please check your task network configuration.",
            ),
        ),
        C.RESOURCE_INITIALIZATION,
        retryable=True,
        batch_will_retry=False,
        summary_has=("timed out",),
        next_step_has=("VPC endpoints", "for Secrets Manager"),
    ),
    Case(
        "fargate-ssm-context-deadline",
        "Fargate 'ResourceInitializationError: … unable to retrieve secrets from ssm: … context "
        "deadline exceeded' (umotif-public/terraform-aws-ecs-fargate#50)",
        ended(
            AttemptFacts(
                "Task failed to start",
                "ResourceInitializationError: unable to pull secrets or registry auth: execution "
                "resource retrieval failed: unable to retrieve secrets from ssm: service call has "
                "been retried 5 time(s): RequestCanceled: request context canceled caused by: "
                "context deadline exceeded",
            ),
        ),
        C.RESOURCE_INITIALIZATION,
        retryable=True,
        batch_will_retry=False,
        summary_has=("SSM parameter", "timed out"),
        next_step_has=("VPC endpoints", "for Systems Manager"),
    ),
    Case(
        "fargate-log-stream-timeout",
        "Fargate 'ResourceInitializationError: failed to validate logger args: … failed to create "
        "Cloudwatch log stream: … i/o timeout' (ECS task execution role docs: awslogs)",
        ended(
            AttemptFacts(
                "Task failed to start",
                "ResourceInitializationError: failed to validate logger args: create stream has "
                "been retried 1 times: failed to create Cloudwatch log stream: RequestError: send "
                'request failed caused by: Post "https://logs.us-east-1.amazonaws.com/": dial tcp '
                "10.0.1.23:443: i/o timeout : exit status 1",
            ),
        ),
        C.RESOURCE_INITIALIZATION,
        retryable=True,
        batch_will_retry=False,
        summary_has=("CloudWatch Logs stream", "timed out"),
        next_step_has=("VPC endpoints", "for CloudWatch Logs"),
    ),
    Case(
        "fargate-log-stream-access-denied",
        "Fargate 'ResourceInitializationError: failed to validate logger args: … not authorized "
        "to perform: logs:CreateLogStream' (ECS task execution role docs: awslogs)",
        ended(
            AttemptFacts(
                "Task failed to start",
                "ResourceInitializationError: failed to validate logger args: create stream has "
                "been retried 1 times: failed to create Cloudwatch log stream: "
                "AccessDeniedException: User: arn:aws:sts::123456789012:assumed-role/"
                "ecsTaskExecutionRole/abc is not authorized to perform: logs:CreateLogStream on "
                "resource: arn:aws:logs:us-east-1:123456789012:log-group:/aws/batch/job",
            ),
        ),
        C.RESOURCE_INITIALIZATION,
        retryable=False,
        batch_will_retry=False,
        summary_has=("access denied",),
        next_step_has=("logs:CreateLogStream",),
    ),
    Case(
        "fargate-ssm-access-denied",
        "Fargate 'ResourceInitializationError: … unable to retrieve secrets from ssm: … "
        "AccessDeniedException' (aws/copilot-cli tests, ECS docs)",
        ended(
            AttemptFacts(
                "Task failed to start",
                "ResourceInitializationError: unable to pull secrets or registry auth: execution "
                "resource retrieval failed: unable to retrieve secrets from ssm: service call has "
                "been retried 1 time(s): AccessDeniedException: User: "
                "arn:aws:sts::123456789012:assumed-role/ecsTaskExecutionRole/abc is not "
                "authorized to perform: ssm:GetParameters",
            ),
        ),
        C.RESOURCE_INITIALIZATION,
        retryable=False,
        batch_will_retry=False,
        next_step_has=("ssm:GetParameters",),
    ),
    Case(
        "fargate-log-group-missing",
        "Fargate 'ResourceInitializationError: failed to validate logger args: … The specified "
        "log group does not exist' (ECS docs)",
        ended(
            AttemptFacts(
                "Task failed to start",
                "ResourceInitializationError: failed to validate logger args: create stream has "
                "been retried 1 times: failed to create Cloudwatch log stream: "
                "ResourceNotFoundException: The specified log group does not exist. : exit "
                "status 1",
            ),
        ),
        C.RESOURCE_INITIALIZATION,
        retryable=False,
        batch_will_retry=False,
    ),
    # --- INFRASTRUCTURE ------------------------------------------------------------------------
    Case(
        "docker-timeout",
        "ECS 'DockerTimeoutError: Could not transition to started; timed out after waiting 3m0s'",
        ended(
            AttemptFacts(
                ESSENTIAL,
                "DockerTimeoutError: Could not transition to started; timed out after waiting 3m0s",
            ),
        ),
        C.INFRASTRUCTURE,
        retryable=True,
        batch_will_retry=False,
        summary_has=("DockerTimeoutError",),
    ),
    Case(
        "cannot-inspect-container",
        "ECS 'CannotInspectContainerError: Could not transition to inspecting; timed out after "
        "waiting 30s' (ECS CannotInspectContainerError docs)",
        ended(
            AttemptFacts(
                ESSENTIAL,
                "CannotInspectContainerError: Could not transition to inspecting; timed out after "
                "waiting 30s",
            ),
        ),
        C.INFRASTRUCTURE,
        retryable=True,
        batch_will_retry=False,
    ),
    Case(
        "devmapper-thin-pool",
        "ECS 'CannotCreateContainerError: … devmapper: Thin Pool has … free data blocks' "
        "(ECS docs)",
        ended(
            AttemptFacts(
                "Task failed to start",
                "CannotCreateContainerError: Error response from daemon: devmapper: Thin Pool has "
                "4350 free data blocks which is less than minimum required 4454 free data blocks. "
                "Create more free space in thin pool or use dm.min_free_space option to change "
                "behavior",
            ),
        ),
        C.INFRASTRUCTURE,
        retryable=True,
        batch_will_retry=False,
    ),
    Case(
        "container-runtime-timeout",
        "Fargate 'ContainerRuntimeTimeoutError: Could not transition to running; timed out "
        "after waiting 1m' (ECS stopped-task error names)",
        ended(
            AttemptFacts(
                "Task failed to start",
                "ContainerRuntimeTimeoutError: Could not transition to running; timed out after "
                "waiting 1m: failed to start container",
            ),
        ),
        C.INFRASTRUCTURE,
        retryable=True,
        batch_will_retry=False,
    ),
    Case(
        "sagemaker-internal-server-error-no-space",
        "Service job 'Received status from SageMaker:InternalServerError: …' (prefix without "
        "a space; SageMaker FailureReason shape)",
        JobFacts(
            event_type=SERVICE,
            status="FAILED",
            status_reason="Received status from SageMaker:InternalServerError: We encountered an "
            "internal error. Please try again.",
            attempts=(
                AttemptFacts(
                    "Received status from SageMaker:InternalServerError: We encountered an "
                    "internal error. Please try again."
                ),
            ),
            is_service_job=True,
        ),
        C.INFRASTRUCTURE,
        retryable=True,
        batch_will_retry=False,
    ),
    # --- APPLICATION_ERROR ---------------------------------------------------------------------
    Case(
        "essential-container-exit-1",
        "AWS Batch 'Essential container in task exited' with exit code 1 (Metaflow PR #500)",
        ended(AttemptFacts(ESSENTIAL, None, 1)),
        C.APPLICATION_ERROR,
        retryable=False,
        batch_will_retry=False,
        summary_has=("Exited with code 1",),
    ),
    Case(
        "segfault-139",
        "'Essential container in task exited' with exit 139 (SIGSEGV)",
        ended(AttemptFacts(ESSENTIAL, None, 139)),
        C.APPLICATION_ERROR,
        retryable=False,
        batch_will_retry=False,
        summary_has=("139 (SIGSEGV)",),
        detail_has=("exit code 139 (SIGSEGV)",),
    ),
    Case(
        "sigterm-143",
        "'Essential container in task exited' with exit 143 (SIGTERM) and no other reason",
        ended(AttemptFacts(ESSENTIAL, None, 143)),
        C.APPLICATION_ERROR,
        retryable=False,
        batch_will_retry=False,
        summary_has=("143 (SIGTERM)",),
    ),
    Case(
        "usage-error-exit-2",
        "'Essential container in task exited' with exit 2 (shell/argparse usage error)",
        ended(AttemptFacts(ESSENTIAL, None, 2), retry_strategy=tries(2)),
        C.APPLICATION_ERROR,
        retryable=False,
        batch_will_retry=False,
        summary_has=("Exited with code 2",),
    ),
    Case(
        "job-level-only-exit-3",
        "A FAILED job with no attempts recorded: job-level container.exitCode only",
        JobFacts(event_type=JOB, status="FAILED", status_reason=ESSENTIAL, exit_code=3),
        C.APPLICATION_ERROR,
        retryable=False,
        batch_will_retry=False,
        summary_has=("Exited with code 3",),
    ),
    Case(
        "eks-error-137",
        "Kubernetes termination reason 'Error' with exit 137 (SIGKILL without OOMKilled)",
        ended(AttemptFacts(None, "Error", 137)),
        C.APPLICATION_ERROR,
        retryable=False,
        batch_will_retry=False,
        summary_has=("137 (SIGKILL)",),
    ),
    Case(
        "sagemaker-algorithm-error",
        "Service job 'Received status from SageMaker: AlgorithmError: ExecuteUserScriptError' "
        "(SageMaker FailureReason shape)",
        JobFacts(
            event_type=SERVICE,
            status="FAILED",
            status_reason="Received status from SageMaker: AlgorithmError: ExecuteUserScriptError:"
            "\nExitCode 1\nErrorMessage \"ModuleNotFoundError: No module named 'transformers'\"",
            attempts=(
                AttemptFacts(
                    "Received status from SageMaker: AlgorithmError: ExecuteUserScriptError:"
                    '\nExitCode 1\nErrorMessage "ModuleNotFoundError: No module named '
                    "'transformers'\""
                ),
            ),
            is_service_job=True,
        ),
        C.APPLICATION_ERROR,
        retryable=False,
        batch_will_retry=False,
        summary_has=("ExecuteUserScriptError",),
    ),
    # --- CANCELLED -----------------------------------------------------------------------------
    Case(
        "airflow-on-kill",
        "Airflow BatchOperator.on_kill TerminateJob reason 'Task killed by the user'",
        ended(
            AttemptFacts(ESSENTIAL, None, 143),
            status_reason="Task killed by the user",
            is_terminated=True,
        ),
        C.CANCELLED,
        retryable=False,
        batch_will_retry=False,
        summary_has=("Task killed by the user",),
        detail_has=("cancelled jobs are never retried",),
    ),
    Case(
        "nextflow-kill-text-only",
        "Nextflow AwsBatchTaskHandler.kill reason 'Job killed by NF'",
        JobFacts(event_type=JOB, status="FAILED", status_reason="Job killed by NF"),
        C.CANCELLED,
        retryable=False,
        batch_will_retry=False,
    ),
    Case(
        "metaflow-kill-text-only",
        "Metaflow BatchJob.kill reason 'Metaflow initiated job termination.'",
        JobFacts(
            event_type=JOB, status="FAILED", status_reason="Metaflow initiated job termination."
        ),
        C.CANCELLED,
        retryable=False,
        batch_will_retry=False,
    ),
    Case(
        "cancelled-flag-no-reason",
        "DescribeJobs isCancelled true and no statusReason",
        JobFacts(event_type=JOB, status="FAILED", is_cancelled=True),
        C.CANCELLED,
        retryable=False,
        batch_will_retry=False,
    ),
    # --- DEPENDENCY_FAILED ---------------------------------------------------------------------
    Case(
        "dependent-job-failed-known-root",
        "AWS Batch statusReason 'Dependent Job failed', dependency looked up in the history",
        JobFacts(
            event_type=JOB,
            status="FAILED",
            status_reason="Dependent Job failed",
            is_cancelled=True,
            depends_on=("3f1e2d7a-0000-4000-8000-000000000001",),
            dependency_job_id="3f1e2d7a-0000-4000-8000-000000000001",
            dependency_category=C.OUT_OF_MEMORY,
        ),
        C.DEPENDENCY_FAILED,
        retryable=False,
        batch_will_retry=False,
        summary_has=("3f1e2d7a-0000-4000-8000-000000000001", "OUT_OF_MEMORY"),
        next_step_has=("3f1e2d7a-0000-4000-8000-000000000001 (OUT_OF_MEMORY)",),
    ),
    Case(
        "dependent-job-failed-unknown-root",
        "AWS Batch statusReason 'Dependent Job failed' with only dependsOn known",
        JobFacts(
            event_type=JOB,
            status="FAILED",
            status_reason="Dependent Job failed",
            is_cancelled=True,
            depends_on=("a1", "b2"),
        ),
        C.DEPENDENCY_FAILED,
        retryable=False,
        batch_will_retry=False,
        next_step_has=("a1, b2",),
    ),
    # --- CAPACITY ------------------------------------------------------------------------------
    Case(
        "queue-blocked-insufficient-capacity",
        "Job queue blocked event 'CAPACITY:INSUFFICIENT_INSTANCE_CAPACITY - Service cannot "
        "fulfill the capacity requested for instance type [instanceTypeName]' (AWS Batch docs)",
        JobFacts(
            event_type=BLOCKED,
            status="RUNNABLE",
            status_reason="CAPACITY:INSUFFICIENT_INSTANCE_CAPACITY - Service cannot fulfill the "
            "capacity requested for instance type [p4d.24xlarge]",
        ),
        C.CAPACITY,
        retryable=True,
        batch_will_retry=False,
        summary_has=("p4d.24xlarge",),
        detail_has=("blocked in the queue",),
        next_step_has=("instance types",),
    ),
    Case(
        "time-limit-cancel-capacity",
        "'Canceled by JobStateTimeLimit action due to reason: CAPACITY:INSUFFICIENT_INSTANCE_"
        "CAPACITY' (AWS Batch jobs stuck in RUNNABLE docs)",
        JobFacts(
            event_type=JOB,
            status="FAILED",
            status_reason="Canceled by JobStateTimeLimit action due to reason: "
            "CAPACITY:INSUFFICIENT_INSTANCE_CAPACITY",
            is_cancelled=True,
        ),
        C.CAPACITY,
        retryable=True,
        batch_will_retry=False,
        summary_has=("JobStateTimeLimit",),
    ),
    Case(
        "service-time-limit-terminate-capacity",
        "Service job 'Terminated by JobStateTimeLimit action due to reason: CAPACITY:…' "
        "(AWS Batch SageMaker jobs stuck in RUNNABLE docs)",
        JobFacts(
            event_type=SERVICE,
            status="FAILED",
            status_reason="Terminated by JobStateTimeLimit action due to reason: "
            "CAPACITY:INSUFFICIENT_INSTANCE_CAPACITY",
            is_terminated=True,
            is_service_job=True,
        ),
        C.CAPACITY,
        retryable=True,
        batch_will_retry=False,
    ),
    Case(
        "sagemaker-capacity-error",
        "Service job 'Received status from SageMaker: CapacityError: Unable to provision "
        "requested ML compute capacity' (SageMaker FailureReason shape)",
        JobFacts(
            event_type=SERVICE,
            status="FAILED",
            status_reason="Received status from SageMaker: CapacityError: Unable to provision "
            "requested ML compute capacity. Please retry using a different ML instance type.",
            is_service_job=True,
        ),
        C.CAPACITY,
        retryable=True,
        batch_will_retry=False,
    ),
    Case(
        "sagemaker-resource-limit-exceeded",
        "Service job 'ResourceLimitExceeded: The account-level service limit …' (SageMaker)",
        JobFacts(
            event_type=SERVICE,
            status="FAILED",
            status_reason="Received status from SageMaker:ResourceLimitExceeded: The "
            "account-level service limit 'ml.p4d.24xlarge for training job usage' is 0 "
            "Instances, with current utilization of 0 Instances and a request delta of 1 "
            "Instances.",
            is_service_job=True,
        ),
        C.CAPACITY,
        retryable=True,
        batch_will_retry=False,
        next_step_has=("quota",),
    ),
    Case(
        "service-queue-blocked-capacity",
        "Service job queue blocked 'CAPACITY:INSUFFICIENT_INSTANCE_CAPACITY - Unable to "
        "provision requested compute resources' (AWS Batch SageMaker docs)",
        JobFacts(
            event_type=SERVICE_BLOCKED,
            status="RUNNABLE",
            status_reason="CAPACITY:INSUFFICIENT_INSTANCE_CAPACITY - Unable to provision "
            "requested compute resources",
            is_service_job=True,
        ),
        C.CAPACITY,
        retryable=True,
        batch_will_retry=False,
    ),
    Case(
        "sagemaker-capacity-retrying",
        "Service job back in RUNNABLE after a SageMaker CapacityError (Batch retries capacity "
        "errors itself)",
        JobFacts(
            event_type=SERVICE,
            status="RUNNABLE",
            attempts=(
                AttemptFacts(
                    "Received status from SageMaker: CapacityError: Unable to provision "
                    "requested ML compute capacity."
                ),
            ),
            is_service_job=True,
        ),
        C.CAPACITY,
        retryable=True,
        batch_will_retry=True,
        summary_has=("Batch is retrying",),
    ),
    # --- MISCONFIGURATION ----------------------------------------------------------------------
    Case(
        "blocked-ce-max-resource",
        "'MISCONFIGURATION:COMPUTE_ENVIRONMENT_MAX_RESOURCE - CE(s) associated with the job "
        "queue cannot meet the CPU requirement of the job.' (AWS Batch docs)",
        JobFacts(
            event_type=BLOCKED,
            status="RUNNABLE",
            status_reason="MISCONFIGURATION:COMPUTE_ENVIRONMENT_MAX_RESOURCE - CE(s) associated "
            "with the job queue cannot meet the CPU requirement of the job.",
        ),
        C.MISCONFIGURATION,
        retryable=False,
        batch_will_retry=False,
        summary_has=("COMPUTE_ENVIRONMENT_MAX_RESOURCE",),
        next_step_has=("maxvCpus",),
    ),
    Case(
        "blocked-job-resource-requirement",
        "'MISCONFIGURATION:JOB_RESOURCE_REQUIREMENT - The job resource requirement "
        "(vCPU/memory/GPU) is higher than that can be met by the CE(s)…' (AWS Batch docs, "
        "nextflow-io/nextflow#5936)",
        JobFacts(
            event_type=BLOCKED,
            status="RUNNABLE",
            status_reason="MISCONFIGURATION:JOB_RESOURCE_REQUIREMENT - The job resource "
            "requirement (vCPU/memory/GPU) is higher than that can be met by the CE(s) attached "
            "to the job queue.",
        ),
        C.MISCONFIGURATION,
        retryable=False,
        batch_will_retry=False,
        summary_has=("JOB_RESOURCE_REQUIREMENT",),
        next_step_has=("vCPU/memory/GPU",),
    ),
    Case(
        "blocked-service-role-permissions",
        "'MISCONFIGURATION:SERVICE_ROLE_PERMISSIONS \u2013 Batch service role has a permission "
        "issue.' (AWS Batch docs; note the en dash)",
        JobFacts(
            event_type=BLOCKED,
            status="RUNNABLE",
            status_reason="MISCONFIGURATION:SERVICE_ROLE_PERMISSIONS \u2013 Batch service role "
            "has a permission issue.",
        ),
        C.MISCONFIGURATION,
        retryable=False,
        batch_will_retry=False,
        next_step_has=("service role",),
    ),
    Case(
        "blocked-ec2-instance-configuration-unsupported",
        "'MISCONFIGURATION:EC2_INSTANCE_CONFIGURATION_UNSUPPORTED' (reason name from the AWS "
        "Batch blocked-queue docs; the text after the dash is illustrative)",
        JobFacts(
            event_type=BLOCKED,
            status="RUNNABLE",
            status_reason="misconfiguration:ec2_instance_configuration_unsupported - The "
            "instance configuration of the CE(s) is not supported.",
        ),
        C.MISCONFIGURATION,
        retryable=False,
        batch_will_retry=False,
        summary_has=("EC2_INSTANCE_CONFIGURATION_UNSUPPORTED",),
        next_step_has=("instance configuration",),
    ),
    Case(
        "blocked-invalid-ce",
        "'ACTION_REQUIRED - CE(s) associated with the job queue are invalid.' (AWS Batch docs)",
        JobFacts(
            event_type=BLOCKED,
            status="RUNNABLE",
            status_reason="ACTION_REQUIRED - CE(s) associated with the job queue are invalid.",
        ),
        C.MISCONFIGURATION,
        retryable=False,
        batch_will_retry=False,
        next_step_has=("INVALID",),
    ),
    Case(
        "time-limit-cancel-misconfiguration",
        "'Canceled by JobStateTimeLimit action due to reason: MISCONFIGURATION:JOB_RESOURCE_"
        "REQUIREMENT' (AWS Batch docs)",
        JobFacts(
            event_type=JOB,
            status="FAILED",
            status_reason="Canceled by JobStateTimeLimit action due to reason: "
            "MISCONFIGURATION:JOB_RESOURCE_REQUIREMENT",
            is_cancelled=True,
        ),
        C.MISCONFIGURATION,
        retryable=False,
        batch_will_retry=False,
        next_step_has=("vCPU/memory/GPU",),
    ),
    Case(
        "service-blocked-service-environment-max",
        "Service queue blocked 'MISCONFIGURATION:SERVICE_ENVIRONMENT_MAX_RESOURCE - Service "
        "environment(s) … cannot meet the capacity requirement' (AWS Batch SageMaker docs)",
        JobFacts(
            event_type=SERVICE_BLOCKED,
            status="RUNNABLE",
            status_reason="MISCONFIGURATION:SERVICE_ENVIRONMENT_MAX_RESOURCE - Service "
            "environment(s) associated with the job queue cannot meet the capacity requirement "
            "of the job.",
            is_service_job=True,
        ),
        C.MISCONFIGURATION,
        retryable=False,
        batch_will_retry=False,
        next_step_has=("capacityLimits",),
    ),
    Case(
        "sagemaker-client-error",
        "Service job 'ClientError: Data download failed:NoSuchKey' (SageMaker FailureReason)",
        JobFacts(
            event_type=SERVICE,
            status="FAILED",
            status_reason="Received status from SageMaker:ClientError: Data download "
            "failed:NoSuchKey (404): The specified key does not exist.",
            is_service_job=True,
        ),
        C.MISCONFIGURATION,
        retryable=False,
        batch_will_retry=False,
    ),
    Case(
        "sagemaker-validation-exception",
        "Service job 'ValidationException' from SageMaker CreateTrainingJob (SageMaker API)",
        JobFacts(
            event_type=SERVICE,
            status="FAILED",
            status_reason="Received status from SageMaker: ValidationException: Could not "
            "assume role arn:aws:iam::123456789012:role/SageMakerRole.",
            is_service_job=True,
        ),
        C.MISCONFIGURATION,
        retryable=False,
        batch_will_retry=False,
    ),
    Case(
        "ecs-unable-to-assume-job-role",
        "'ECS was unable to assume the role '…' that was provided for this task. Please verify "
        "that the role being passed has the proper trust relationship and permissions …' "
        "(AWS Batch statusReason, nextflow-io/nextflow#2146)",
        ended(
            AttemptFacts(
                "ECS was unable to assume the role "
                "'arn:aws:iam::123456789012:role/ecsInstanceRole' that was provided for this "
                "task. Please verify that the role being passed has the proper trust "
                "relationship and permissions and that your IAM user has permissions to pass "
                "this role."
            )
        ),
        C.MISCONFIGURATION,
        retryable=False,
        batch_will_retry=False,
        summary_has=("arn:aws:iam::123456789012:role/ecsInstanceRole",),
        next_step_has=("ecs-tasks.amazonaws.com",),
    ),
    # --- UNKNOWN -------------------------------------------------------------------------------
    Case(
        "blocked-undetermined",
        "Job queue blocked 'UNDETERMINED - Batch job is blocked, root cause is undetermined.' "
        "(AWS Batch docs: a statusReason needing manual investigation; apache/airflow#38298)",
        JobFacts(
            event_type=BLOCKED,
            status="RUNNABLE",
            status_reason="UNDETERMINED - Batch job is blocked, root cause is undetermined.",
        ),
        C.UNKNOWN,
        retryable=False,
        batch_will_retry=False,
        summary_has=("Queue blocked",),
        next_step_has=("has not started", "compute environment"),
    ),
    Case(
        "essential-container-exit-0",
        "'Essential container in task exited' with exit code 0 on a FAILED job",
        ended(AttemptFacts(ESSENTIAL, None, 0)),
        C.UNKNOWN,
        retryable=False,
        batch_will_retry=False,
    ),
    Case(
        "nothing-recorded",
        "A FAILED job with no reason, no attempt and no exit code (event-only record)",
        JobFacts(event_type=JOB, status="FAILED"),
        C.UNKNOWN,
        retryable=False,
        batch_will_retry=False,
        detail_has=("no reason or exit code recorded",),
    ),
    Case(
        "unrecognised-reason",
        "A reason no pattern knows",
        ended(AttemptFacts("Something unexpected happened to the job", None, None)),
        C.UNKNOWN,
        retryable=False,
        batch_will_retry=False,
        summary_has=("Something unexpected happened",),
    ),
)

#: The container/status reasons of the corpus, as seeds for property tests.
REASONS: tuple[str, ...] = tuple(
    sorted(
        {
            reason
            for case in CASES
            for reason in (
                case.facts.status_reason,
                case.facts.container_reason,
                *(a.status_reason for a in case.facts.attempts),
                *(a.container_reason for a in case.facts.attempts),
            )
            if reason
        }
    )
)
