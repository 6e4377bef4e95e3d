"""Which input changes force pulumi-aws to *replace* an AWS resource.

pulumi-aws is bridged from the Terraform AWS provider: an input forces a replacement exactly
when the Terraform schema marks the attribute ``ForceNew`` (the bridge reports it as a
``replace`` in Pulumi's diff). The Python SDK does not say which inputs those are, so each row
below names the file of hashicorp/terraform-provider-aws (v6, which pulumi-aws 7 bridges) whose
resource schema marks them; inputs are in the graph's wire form (camelCase).

Two resources replace on nearly everything: a SageMaker ``Model`` and ``EndpointConfiguration``
update nothing but their tags in place (their ``Update`` functions only retag), which is why the
AWS target auto-names them and lets Pulumi create the new one before deleting the old. An
``Endpoint`` updates its configuration and deployment policy in place (the update and
blue/green policies, their waits and execution timeouts included), but a change of its
rollback alarms (``deploymentConfig.autoRollbackConfiguration``) replaces it, and with
``deleteBeforeReplace`` that interrupts serving. The rollback alarms themselves are named once
and never renamed by a model change: a new endpoint configuration changes only their
``EndpointConfigName`` dimension, an in-place update, so a new model version never replaces
the endpoint.

Every row of the table is also covered by :data:`COMMON_FIELDS`: since v6 any regional resource
takes a ``region`` input, and a resource cannot move between regions. The plan
(``compiler/plan/replace.py``) reads this table through ``AwsTarget.replace_table``; the risk
flags (``compiler/plan/risk.py``) read :data:`RISKY_TYPES`.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

from mlplane.compiler.core.plugins import ReplaceTable, RiskyTypes

AWS_PREFIX = "aws:"
COMMON_FIELDS = ("region",)
"""Every ``aws:*`` type: the per-resource region (v6 "enhanced region support")."""

_BUCKET = ("bucket",)
_BUCKET_OWNED = ("bucket", "expectedBucketOwner")

REPLACE_FIELDS: Mapping[str, tuple[str, ...]] = MappingProxyType(
    {
        # internal/service/appautoscaling/target.go
        "aws:appautoscaling/target:Target": ("resourceId", "scalableDimension", "serviceNamespace"),
        # internal/service/appautoscaling/policy.go
        "aws:appautoscaling/policy:Policy": (
            "name", "resourceId", "scalableDimension", "serviceNamespace",
        ),
        # internal/service/cloudwatch/composite_alarm.go
        "aws:cloudwatch/compositeAlarm:CompositeAlarm": ("alarmName",),
        # internal/service/cloudwatch/dashboard.go
        "aws:cloudwatch/dashboard:Dashboard": ("dashboardName",),
        # internal/service/logs/group.go
        "aws:cloudwatch/logGroup:LogGroup": ("logGroupClass", "name", "namePrefix"),
        # internal/service/cloudwatch/metric_alarm.go (alarm_name, which pulumi-aws names `name`)
        "aws:cloudwatch/metricAlarm:MetricAlarm": ("name",),
        # internal/service/iam/role.go
        "aws:iam/role:Role": ("name", "namePrefix", "path"),
        # internal/service/iam/role_policy.go
        "aws:iam/rolePolicy:RolePolicy": ("name", "namePrefix", "role"),
        # internal/service/kms/alias.go
        "aws:kms/alias:Alias": ("name", "namePrefix"),
        # internal/service/kms/key.go
        "aws:kms/key:Key": (
            "customKeyStoreId", "customerMasterKeySpec", "keyUsage", "multiRegion", "xksKeyId",
        ),
        # internal/service/s3/bucket.go
        "aws:s3/bucket:Bucket": ("bucket", "bucketPrefix", "objectLockEnabled"),
        # internal/service/s3/bucket_lifecycle_configuration.go
        "aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration": _BUCKET_OWNED,
        # internal/service/s3/bucket_logging.go
        "aws:s3/bucketLogging:BucketLogging": _BUCKET_OWNED,
        # internal/service/s3/bucket_ownership_controls.go
        "aws:s3/bucketOwnershipControls:BucketOwnershipControls": _BUCKET,
        # internal/service/s3/bucket_policy.go
        "aws:s3/bucketPolicy:BucketPolicy": _BUCKET,
        # internal/service/s3/bucket_public_access_block.go
        "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock": _BUCKET,
        # internal/service/s3/bucket_server_side_encryption_configuration.go
        "aws:s3/bucketServerSideEncryptionConfiguration:"
        "BucketServerSideEncryptionConfiguration": _BUCKET_OWNED,
        # internal/service/s3/bucket_versioning.go
        "aws:s3/bucketVersioning:BucketVersioning": _BUCKET_OWNED,
        # internal/service/sagemaker/endpoint.go
        "aws:sagemaker/endpoint:Endpoint": ("deploymentConfig.autoRollbackConfiguration", "name"),
        # internal/service/sagemaker/endpoint_configuration.go: every input but tags
        "aws:sagemaker/endpointConfiguration:EndpointConfiguration": (
            "asyncInferenceConfig", "dataCaptureConfig", "executionRoleArn", "kmsKeyArn", "name",
            "namePrefix", "productionVariants", "shadowProductionVariants",
        ),
        # internal/service/sagemaker/model.go: every input but tags
        "aws:sagemaker/model:Model": (
            "containers", "enableNetworkIsolation", "executionRoleArn",
            "inferenceExecutionConfig", "name", "primaryContainer", "vpcConfig",
        ),
        # internal/service/sagemaker/pipeline.go: UpdatePipeline cannot rename a pipeline
        "aws:sagemaker/pipeline:Pipeline": ("pipelineName",),
        # internal/service/scheduler/schedule.go
        "aws:scheduler/schedule:Schedule": ("groupName", "name", "namePrefix"),
        # internal/service/sns/topic.go
        "aws:sns/topic:Topic": ("fifoTopic", "name", "namePrefix"),
        # internal/service/sns/topic_policy.go
        "aws:sns/topicPolicy:TopicPolicy": ("arn",),
        # internal/service/sns/topic_subscription.go: endpoint, protocol, topic_arn are ForceNew
        "aws:sns/topicSubscription:TopicSubscription": ("endpoint", "protocol", "topic"),
        # internal/service/chatbot/slack_channel_configuration.go: no RequiresReplace, every
        # attribute is updated in place
        "aws:chatbot/slackChannelConfiguration:SlackChannelConfiguration": (),
    }
)  # fmt: skip
"""Type token -> input paths that force a replacement (besides :data:`COMMON_FIELDS`)."""

TABLE = ReplaceTable(AWS_PREFIX, COMMON_FIELDS, REPLACE_FIELDS)

RISKY_TYPES = RiskyTypes(
    data=frozenset(
        {
            "aws:s3/bucket:Bucket",
            "aws:s3/bucketV2:BucketV2",
            "aws:kms/key:Key",  # its deletion leaves every object encrypted with it unreadable
            "aws:cloudwatch/logGroup:LogGroup",  # endpoint logs: an audit trail
            "aws:rds/instance:Instance",
            "aws:rds/cluster:Cluster",
            "aws:dynamodb/table:Table",
            "aws:efs/fileSystem:FileSystem",
            "aws:ebs/volume:Volume",
            "aws:kinesis/stream:Stream",
            "aws:sagemaker/featureGroup:FeatureGroup",
        }
    ),
    serving=frozenset({"aws:sagemaker/endpoint:Endpoint", "aws:lb/loadBalancer:LoadBalancer"}),
    data_notes=MappingProxyType(
        {
            "aws:kms/key:Key": "the key is scheduled for deletion: once its deletion window ends, "
            "every object encrypted with it is unreadable",
        }
    ),
)
"""Resource types whose deletion or replacement loses data or interrupts serving."""
