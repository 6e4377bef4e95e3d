"""``mlplane init``: a commented starter spec that validates as written, in a repository that is
safe by default.

What ``init DIR`` writes, each file atomically (a temporary file in the same directory, then a
rename; never through a symbolic link) and with the user's umask (created with mode 0666, as
``touch`` or an editor would, not a fixed private mode):

- ``mlplane.yaml``, the starter, whose comments are aligned on one column;
- ``mlplane.v1.schema.json``, the JSON Schema of the installed mlplane (``mlplane schema --out``
  rewrites it after an upgrade). The starter's modeline names it relative to the spec
  (``$schema=mlplane.v1.schema.json``), which yaml-language-server resolves against the spec
  file's own directory, so completion and checks work offline, before anything is published,
  for everyone who clones the repository (a path into one machine's installed package would
  not), and with the schema of the version that validates the spec;
- ``.gitignore``, merged: ``build/`` (``mlplane build``'s default output) and ``.mlplane/``
  (plan cache, applied records, local state) are added when missing, anything else is kept,
  and a second run changes nothing.
"""

from __future__ import annotations

import os
import re
import secrets
import stat
from pathlib import Path

SCHEMA_NAME = "mlplane.v1.schema.json"
IGNORED = ("build/", ".mlplane/")
"""What ``init`` adds to ``.gitignore``: build outputs, and mlplane's local state and cache."""
COMMENT_COLUMN = 40
"""The column (0-based) where the starter's end-of-line comments start, or further right when a
line's code is longer (a long system name): every comment starts on the same column."""

STARTER = """\
# yaml-language-server: $schema={schema}
#
# An mlplane spec describes one ML system: its data, models, security and SLAs, and where it
# runs. Validate it with `mlplane validate`, see the effective spec of an environment with
# `mlplane explain --env prod --show-origin`. Every field is documented in the JSON Schema
# next to this file, which editors with yaml-language-server use for completion; after
# upgrading mlplane, rewrite it with `mlplane schema --out {schema}`.
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
    kubernetes:
      context: kind-mlplane              # namespace defaults to <name>-dev
      mesh: none                         # kind runs no mesh: plain pod traffic, said
    overrides:                           # deep-merged over the base spec for this environment
      models:
        model:
          serving:
            replicas: {{min: 1, max: 2}}
  prod:
    target: kubernetes
    production: true                     # the strictest policies apply
    residency: eu
    kubernetes:
      context: prod
      namespace: {name}
      mesh: istio                        # or linkerd: encrypts traffic between pods

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


_COMMENTED = re.compile(r"^(?P<code>\s*[^\s#].*?)\s{2,}(?P<comment># .*)$")


def starter_spec(name: str, owner: str) -> str:
    """The starter text for a system ``name`` owned by ``owner`` (both already validated)."""
    return align_comments(STARTER.format(name=name, owner=owner, schema=SCHEMA_NAME))


def align_comments(text: str, column: int = COMMENT_COLUMN) -> str:
    """End-of-line comments start on one column: ``column``, or two spaces after the longest
    line of code that carries a comment."""
    lines = text.split("\n")
    matches = [_COMMENTED.match(line) for line in lines]
    codes = [match["code"] for match in matches if match is not None]
    width = max([column - 2, *(len(code) for code in codes)])
    return "\n".join(
        line if match is None else f"{match['code'].ljust(width)}  {match['comment']}"
        for line, match in zip(lines, matches, strict=True)
    )


def merged_gitignore(existing: str | None) -> str | None:
    """``existing`` (None: no file) with the entries of :data:`IGNORED` it lacks; None when it
    already has them all. An entry counts as present in any equivalent spelling (``/build``,
    ``build/``, ``build``)."""
    present = {line.strip().strip("/") for line in (existing or "").splitlines()}
    missing = [entry for entry in IGNORED if entry.strip("/") not in present]
    if not missing:
        return None
    head = existing or ""
    if head and not head.endswith("\n"):
        head += "\n"
    if head:
        head += "\n"
    return (
        head
        + "# mlplane: build outputs and local state (plan cache, applied records)\n"
        + ("".join(f"{entry}\n" for entry in missing))
    )


def write_user_file(target: Path, text: str) -> None:
    """Write ``text`` to ``target`` atomically, as the user's own file: created with mode 0666
    less the umask (an existing file keeps its mode), never through a symbolic link."""
    if target.is_symlink():
        raise OSError(f"{target} is a symbolic link; refusing to write through it")
    try:
        mode = stat.S_IMODE(target.stat().st_mode)
    except FileNotFoundError:
        mode = None
    target.parent.mkdir(parents=True, exist_ok=True)
    temporary = target.with_name(f".{target.name}.{secrets.token_hex(6)}.tmp")
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0)
    handle = os.open(temporary, flags, 0o666)  # the kernel applies the umask
    try:
        with os.fdopen(handle, "w", encoding="utf-8", newline="\n") as stream:
            stream.write(text)
            stream.flush()
            if mode is not None:
                os.fchmod(stream.fileno(), mode)
            os.fsync(stream.fileno())
        os.replace(temporary, target)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise


def write_gitignore(directory: Path) -> bool:
    """Merge :data:`IGNORED` into ``directory/.gitignore``; whether the file changed."""
    target = directory / ".gitignore"
    if target.is_symlink() or (target.exists() and not target.is_file()):
        raise OSError(f"{target} is not a regular file; refusing to change it")
    existing = target.read_text(encoding="utf-8") if target.exists() else None
    merged = merged_gitignore(existing)
    if merged is None:
        return False
    write_user_file(target, merged)
    return True
