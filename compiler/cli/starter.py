"""``mlplane init``: a commented starter spec that validates as written."""

from __future__ import annotations

STARTER = """\
# yaml-language-server: $schema=https://mlplane.dev/schema/mlplane.v1.schema.json
#
# An mlplane spec describes one ML system: its data, models, security and SLAs, and where it
# runs. Validate it with `mlplane validate`, see the effective spec of an environment with
# `mlplane explain --env prod --show-origin`. Every field is documented in the JSON Schema
# (`mlplane schema`), which editors with yaml-language-server use for completion.
apiVersion: mlplane.dev/v1
kind: MLSystem
metadata:
  name: {name}                       # a DNS-1123 label: lower case, digits and '-'
  owner: {owner}                          # the owning team; alerts route here by default
  description: What this system does, in one sentence

environments:
  dev:
    target: kubernetes                   # a local kind/minikube cluster or any cluster
    residency: eu                        # where it runs: checked against the data's residency
    kubernetes: {{context: kind-mlplane}}  # namespace defaults to <name>-dev
    overrides:                           # deep-merged over the base spec for this environment
      models:
        model:
          serving:
            replicas: {{min: 1, max: 2}}
  prod:
    target: kubernetes
    production: true                     # the strictest policies apply
    residency: eu
    kubernetes: {{context: prod, namespace: {name}}}

dataSources:
  events:
    type: stream                         # objectStore | database | stream | featureStore
    uri: kafka://events.internal:9093/events
    classification: internal             # public | internal | confidential | pii | phi
    residency: eu
    retention: 30d
    encryption: kms                      # none | managed | kms (customer-managed keys)
    freshness: 10m                       # the newest record must be younger than this

models:
  model:
    framework: sklearn
    version: "1.0.0"                     # quote versions: 1.10 unquoted is the number 1.1
    image: ghcr.io/acme/model@sha256:0000000000000000000000000000000000000000000000000000000000000000
    inputs: [events]
    serving:
      replicas: {{min: 2, max: 6}}
      autoscaling: {{metric: cpu, target: 70}}
      resources: {{cpu: 500m, memory: 1Gi}}
      rollout: {{strategy: canary, steps: [10, 50], pause: 5m}}

security:
  network: {{defaultDeny: true}}
  images: {{allowedRegistries: [ghcr.io/acme], requireDigest: true}}
  secrets: {{}}                           # name: {{ref: vault://path#key}} - references only

slas:
  model-availability:
    model: model
    objective: 99.9
    window: 30d
    indicator: availability
  events-fresh:
    dataSource: events
    objective: 99
    indicator: {{freshness: {{maxAge: 10m}}}}
"""


def starter_spec(name: str, owner: str) -> str:
    """The starter text for a system ``name`` owned by ``owner`` (both already validated)."""
    return STARTER.format(name=name, owner=owner)
