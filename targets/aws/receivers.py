"""The spec's alert receivers as subscribers of the alarm topics (one SNS topic per receiver).

Which receiver an alarm notifies follows the Alertmanager routing of
``monitoring/alertmanager.yaml`` (``alertmanager.delivery_routes``, so pages go to a ticket
receiver outside production): the first route matching the alarm's team (its SLA's owner, or
the served model's) and severity, else the default receiver (:func:`receiver_for`). Its alarms
publish to that receiver's topic, and the receiver is subscribed to it:

- ``email``: one ``email`` subscription per address (the recipient confirms it once, from the
  message SNS sends);
- ``pagerduty``: an ``https`` subscription to PagerDuty's Amazon CloudWatch integration, whose
  URL (``https://events.pagerduty.com/integration/<integration key>/enqueue``) is the secret's
  value; PagerDuty confirms the subscription itself. SNS needs the value at deployment, so the
  secret must be an ``env:`` reference (Pulumi secret config); any other reference is an error;
- ``slack``: an AWS Chatbot ``SlackChannelConfiguration`` on the topic (``slack.chatbot``:
  workspace and channel IDs; the workspace is authorised for AWS Chatbot once, in the console),
  with a role Chatbot assumes that grants nothing. An incoming webhook cannot confirm an SNS
  subscription, so a Slack receiver without ``chatbot`` is an error.

A receiver that cannot be lowered is a located error (``aws-receiver-not-lowered``), never
silence.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from mlplane.compiler.core import ir
from mlplane.compiler.core.diagnostics import Diagnostics
from mlplane.compiler.core.graph import Resource, ResourceOptions, json_document, ref, secret_ref
from mlplane.targets.aws import alarm_codes
from mlplane.targets.monitoring import alertmanager

SUBSCRIPTION = "aws:sns/topicSubscription:TopicSubscription"
CHATBOT = "aws:chatbot/slackChannelConfiguration:SlackChannelConfiguration"
ROLE = "aws:iam/role:Role"
CHATBOT_PRINCIPAL = "chatbot.amazonaws.com"
PAGERDUTY_HOST = "https://events.pagerduty.com/"


def receiver_for(system: ir.System, owner: str, severity: str) -> str | None:
    """The receiver that alerts of ``owner`` and ``severity`` reach (None: none)."""
    alerting = system.alerting
    found = next(
        (
            route.receiver
            for route in alertmanager.delivery_routes(system)
            if route.owner in (None, owner) and route.severity in (None, severity)
        ),
        alerting.default_receiver,
    )
    return found if found in alerting.receivers else None


def lower_receivers(
    system: ir.System,
    topics: Mapping[str, str],
    provider: str,
    parent: str | None,
    diagnostics: Diagnostics,
) -> list[Resource]:
    """The subscriptions of ``topics`` (receiver -> logical name of its topic)."""
    options = ResourceOptions(provider=provider)
    out: list[Resource] = []
    for name, topic in sorted(topics.items()):
        receiver = system.alerting.receivers[name]
        out += _lower_one(system, receiver, [topic], options, parent, diagnostics)
    return out


def _subscription(
    name: str, inputs: dict[str, Any], receiver: ir.Receiver, options: ResourceOptions,
    parent: str | None,
) -> Resource:  # fmt: skip
    return Resource(SUBSCRIPTION, name, inputs, receiver.origin, parent, (), options)


def _lower_one(
    system: ir.System,
    receiver: ir.Receiver,
    topics: list[str],
    options: ResourceOptions,
    parent: str | None,
    diagnostics: Diagnostics,
) -> list[Resource]:
    out: list[Resource] = []
    base = f"sns-subscription.{receiver.name}"
    for topic in topics:
        for index, address in enumerate(receiver.email):
            email: dict[str, Any] = {"topic": ref(topic, "arn"), "protocol": "email"}
            email["endpoint"] = address
            name = f"{base}.email-{index}"
            out.append(_subscription(name, email, receiver, options, parent))
        if receiver.pagerduty_secret is not None:
            secret = system.security.secrets.get(receiver.pagerduty_secret)
            if secret is None or secret.scheme != "env":
                _refuse(
                    diagnostics,
                    receiver,
                    ("pagerduty", "routingKeySecret"),
                    f"receiver {receiver.name!r}: SNS needs PagerDuty's integration URL at "
                    "deployment, but its secret is not an env: reference",
                    "in the aws environment's overrides, set the secret to an env: reference "
                    "holding the URL of PagerDuty's Amazon CloudWatch integration",
                )
            else:
                inputs: dict[str, Any] = {
                    "topic": ref(topic, "arn"),
                    "protocol": "https",
                    "endpoint": secret_ref(secret.name),
                    "endpointAutoConfirms": True,
                }
                out.append(_subscription(f"{base}.pagerduty", inputs, receiver, options, parent))
    if receiver.slack_channel is not None:
        out += _chatbot(system, receiver, topics, options, parent, diagnostics)
    return out


def _chatbot(
    system: ir.System,
    receiver: ir.Receiver,
    topics: list[str],
    options: ResourceOptions,
    parent: str | None,
    diagnostics: Diagnostics,
) -> list[Resource]:
    if receiver.slack_workspace_id is None or receiver.slack_channel_id is None:
        _refuse(
            diagnostics,
            receiver,
            ("slack",),
            f"receiver {receiver.name!r} posts to Slack through an incoming webhook, which "
            "cannot confirm an SNS subscription; the aws target reaches Slack through AWS Chatbot",
            "add slack.chatbot: {workspaceId: T..., channelId: C...} (the workspace authorised "
            "for AWS Chatbot)",
        )
        return []
    role = f"chatbot-role.{receiver.name}"
    trust = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {"Service": CHATBOT_PRINCIPAL},
                "Action": "sts:AssumeRole",
            }
        ],
    }
    env = system.environment.name
    role_inputs: dict[str, Any] = {
        "name": f"{system.name}-{env}-chatbot-{receiver.name}"[:64],
        "assumeRolePolicy": json_document(trust),
    }
    config = {
        "configurationName": f"{system.name}-{env}-{receiver.name}"[:128],
        "iamRoleArn": ref(role, "arn"),
        "slackTeamId": receiver.slack_workspace_id,
        "slackChannelId": receiver.slack_channel_id,
        "snsTopicArns": [ref(topic, "arn") for topic in topics],
    }
    return [
        Resource(ROLE, role, role_inputs, receiver.origin, parent, (), options),
        Resource(CHATBOT, f"chatbot.{receiver.name}", config, receiver.origin, parent, (), options),
    ]


def _refuse(
    diagnostics: Diagnostics, receiver: ir.Receiver, field: tuple[str, ...], message: str,
    hint: str,
) -> None:  # fmt: skip
    path = (*receiver.origin.path, *field)
    diagnostics.error(
        alarm_codes.RECEIVER_NOT_LOWERED, message, receiver.origin.location, path, hint=hint
    )
