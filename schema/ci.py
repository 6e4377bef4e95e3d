"""The ``ci:`` section: how the generated CI workflows run this system's GitOps loop.

``mlplane ci`` turns it into GitHub Actions workflows or a GitLab CI file. Everything here ends
up in CI configuration that later runs with cloud credentials, so every value has a narrow,
documented character set: nothing a user writes can become shell or a CI expression (``${{``,
``$(...)``, quotes and spaces are all outside every rule below). Environment names are checked
against ``environments`` by the resolver, with did-you-mean hints.

The role that CI assumes in AWS lives here (``ci.environments.<env>.aws.roleArn``) rather than in
the environment's own settings: it says *who deploys*, not *where the system runs*, so changing
it must not change the resource graph, the plan or any policy finding.
"""

from __future__ import annotations

import re
from typing import Annotated, Literal

from pydantic import AfterValidator, Field, WithJsonSchema, model_validator

from mlplane.schema import formats
from mlplane.schema.base import Spec
from mlplane.schema.types import AwsRegion, Cron, EnvName, fail

__all__ = [
    "PYTHON_VERSIONS",
    "Ci",
    "CiApply",
    "CiAws",
    "CiDrift",
    "CiEnvironment",
    "CiGitSource",
    "CiGitlab",
    "CiInstall",
]

PYTHON_VERSIONS = ("3.11", "3.12", "3.13")

# --- scalar rules ---------------------------------------------------------------------------

_RUNNER_LABEL = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")


def _check_runner_label(value: str) -> str:
    if not _RUNNER_LABEL.match(value):
        raise fail(
            "invalid-format",
            f"invalid runner label {formats.quote(value)}: letters, digits, '.', '_' and '-', "
            "starting with a letter or digit (at most 100 characters), such as 'ubuntu-24.04'",
        )
    return value


RunnerLabel = Annotated[
    str,
    AfterValidator(_check_runner_label),
    WithJsonSchema({"type": "string", "pattern": _RUNNER_LABEL.pattern, "maxLength": 100}),
]

_BRANCH = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._/-]{0,199}$")


def _check_branch(value: str) -> str:
    broken = ".." in value or "//" in value or value.endswith(("/", ".", ".lock"))
    if broken or not _BRANCH.match(value):
        raise fail(
            "invalid-format",
            f"invalid branch name {formats.quote(value)}: letters, digits and . _ / -, starting "
            "with a letter or digit, no '..' or '//', not ending in '/', '.' or '.lock'",
        )
    return value


Branch = Annotated[
    str,
    AfterValidator(_check_branch),
    WithJsonSchema({"type": "string", "pattern": _BRANCH.pattern, "maxLength": 200}),
]

_SEGMENT = r"[A-Za-z0-9_][A-Za-z0-9._-]*"
_REPO_PATH = re.compile(rf"^(\.|{_SEGMENT}(/{_SEGMENT})*)$")


def _check_repo_path(value: str) -> str:
    if ".." in value.split("/"):
        raise fail(
            "path-outside-root",
            f"spec path {formats.quote(value)} leaves the repository: '..' is not allowed",
        )
    if len(value) > 255 or not _REPO_PATH.match(value):
        raise fail(
            "invalid-format",
            f"invalid spec path {formats.quote(value)}: a relative path inside the repository "
            "such as 'deploy/fraud-scoring' or '.' (letters, digits and . _ - per segment, no "
            "leading '/', '-' or '.', no '..')",
        )
    return value


RepoPath = Annotated[
    str,
    AfterValidator(_check_repo_path),
    WithJsonSchema({"type": "string", "pattern": _REPO_PATH.pattern, "maxLength": 255}),
]

_PIP_VERSION = re.compile(r"^[0-9]+(\.[0-9]+){0,3}((a|b|rc)[0-9]+)?(\.post[0-9]+)?(\.dev[0-9]+)?$")


def _check_pip_version(value: str) -> str:
    if not _PIP_VERSION.match(value) or len(value) > 40:
        raise fail(
            "invalid-format",
            f"invalid mlplane version {formats.quote(value)}: an exact release such as '0.1.0' "
            "or '1.2.0rc1' (CI installs exactly this version)",
        )
    return value


PipVersion = Annotated[
    str,
    AfterValidator(_check_pip_version),
    WithJsonSchema({"type": "string", "pattern": _PIP_VERSION.pattern, "maxLength": 40}),
]

_GIT_URL = re.compile(
    r"^https://[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)+"
    r"(:[0-9]{1,5})?(/[A-Za-z0-9][A-Za-z0-9._~-]{0,99}){1,8}$"
)


def _check_git_url(value: str) -> str:
    if len(value) > 400 or not _GIT_URL.match(value):
        raise fail(
            "invalid-format",
            f"invalid git repository URL {formats.quote(value)}: an https:// URL of a host and a "
            "path, without credentials, query or fragment, such as "
            "'https://github.com/acme/mlplane'",
        )
    return value


GitUrl = Annotated[
    str,
    AfterValidator(_check_git_url),
    WithJsonSchema({"type": "string", "pattern": _GIT_URL.pattern, "maxLength": 400}),
]

_COMMIT = re.compile(r"^[0-9a-f]{40}$")


def _check_commit(value: str) -> str:
    if not _COMMIT.match(value):
        raise fail(
            "invalid-format",
            f"invalid commit {formats.quote(value)}: the full 40-character lower-case hex id of a "
            "commit (a branch or tag can move; a commit cannot)",
        )
    return value


CommitId = Annotated[
    str,
    AfterValidator(_check_commit),
    WithJsonSchema({"type": "string", "pattern": _COMMIT.pattern}),
]

_ROLE_ARN = re.compile(
    r"^arn:aws(-cn|-us-gov)?:iam::[0-9]{12}:role/([A-Za-z0-9+=,.@_-]+/)*[A-Za-z0-9+=,.@_-]{1,64}$"
)


def _check_role_arn(value: str) -> str:
    if len(value) > 512 or not _ROLE_ARN.match(value):
        raise fail(
            "invalid-format",
            f"invalid IAM role ARN {formats.quote(value)}: write "
            "arn:aws:iam::<12-digit account>:role/<name>, such as "
            "'arn:aws:iam::123456789012:role/mlplane-deploy'",
        )
    return value


RoleArn = Annotated[
    str,
    AfterValidator(_check_role_arn),
    WithJsonSchema({"type": "string", "pattern": _ROLE_ARN.pattern, "maxLength": 512}),
]


def _check_pinned_image(value: str) -> str:
    parts = formats.parse_image(value)
    if parts is None or not parts["digest"] or len(value) > 512:
        raise fail(
            "invalid-image",
            f"invalid CI image {formats.quote(value)}: pin it by digest, such as "
            "'python:3.12-slim@sha256:<64 hex digits>' (a tag alone can change under you)",
        )
    return value


PinnedImage = Annotated[
    str,
    AfterValidator(_check_pinned_image),
    WithJsonSchema(
        {
            "type": "string",
            "pattern": r"^[^@\s]+@sha256:[0-9a-f]{64}$",
            "maxLength": 512,
            "description": "An OCI image pinned by digest: name[:tag]@sha256:<64 hex>.",
        }
    ),
]

EnvNames = Annotated[list[EnvName], Field(max_length=16)]


def _check_python(value: str) -> str:
    if value not in PYTHON_VERSIONS:
        raise fail(
            "invalid-value",
            f"unsupported Python version {formats.quote(value)}: choose "
            + ", ".join(f'"{v}"' for v in PYTHON_VERSIONS),
            suggestion=formats.closest(value, PYTHON_VERSIONS),
            allowed=list(PYTHON_VERSIONS),
        )
    return value


PythonVersion = Annotated[
    str,
    AfterValidator(_check_python),
    WithJsonSchema({"type": "string", "enum": list(PYTHON_VERSIONS)}),
]
"""A string, so that an unquoted 3.12 is reported as "quote the value" rather than read as a
number (and 3.10 as 3.1)."""

# --- the section ----------------------------------------------------------------------------


class CiApply(Spec):
    """Which environments CI applies after a merge. An environment in neither list is only
    validated and planned, never applied by CI."""

    auto: EnvNames = []
    """Applied automatically, in declared order, when the default branch changes."""
    manual: EnvNames = []
    """Applied only after a person starts the job (GitHub: run the apply workflow and choose
    the environment; GitLab: the job's play button), then gated by the environment's rules."""

    @model_validator(mode="after")
    def _disjoint(self) -> CiApply:
        for field in ("auto", "manual"):
            seen: set[str] = set()
            for name in getattr(self, field):
                if name in seen:
                    raise fail("duplicate-name", f"apply.{field} lists {formats.quote(name)} twice")
                seen.add(name)
        both = sorted(set(self.auto) & set(self.manual))
        if both:
            raise fail(
                "contradiction",
                f"environment {formats.quote(both[0])} is in both apply.auto and apply.manual",
                fields=("auto", "manual"),
            )
        return self


class CiAws(Spec):
    role_arn: RoleArn
    """The IAM role CI assumes through OpenID Connect (no long-lived keys)."""
    region: AwsRegion | None = None
    """The region to request credentials in; defaults to the environment's aws.region."""


class CiEnvironment(Spec):
    aws: CiAws | None = None

    @property
    def role(self) -> CiAws | None:
        """The role CI assumes for this environment (written under :data:`ROLE_KEY`)."""
        return self.aws


ROLE_KEY = "aws"
"""The key of ``ci.environments.<env>`` that holds the role CI assumes: an AWS IAM role, the
only cloud login the generated workflows perform (the compiler reads it through
:attr:`CiEnvironment.role` and this key, never by the name of a target)."""

CiRole = CiAws
"""The role CI assumes, by what it is rather than by its cloud."""


class CiDrift(Spec):
    schedule: Cron = "17 5 * * *"
    """When the drift check runs (UTC, five-field cron). GitLab takes schedules from its UI:
    create a pipeline schedule with this cron."""


class CiGitSource(Spec):
    """A commit of an mlplane repository, for CI to install when no release fits."""

    url: GitUrl
    commit: CommitId


class CiInstall(Spec):
    """Where CI installs mlplane from, instead of the release on the package index."""

    git: CiGitSource
    """``pip install "mlplane @ git+<url>@<commit>"``: needs git in the job's image (GitHub's
    runners have it; set ``ci.gitlab.image`` to an image with git for GitLab)."""


class CiGitlab(Spec):
    image: PinnedImage | None = None
    """The image GitLab jobs run in; defaults to the official python image of ``ci.python``,
    pinned by digest in mlplane."""


class Ci(Spec):
    """The CI workflows ``mlplane ci`` generates: validate and plan on every pull/merge request,
    apply after merge, and a scheduled drift check."""

    provider: Literal["github", "gitlab"] = "github"
    """The default of ``mlplane ci --provider``."""
    default_branch: Branch = "main"
    """The branch whose changes are applied (GitHub; GitLab uses the project's default)."""
    spec_path: RepoPath | None = None
    """Where the spec lives, relative to the repository root; defaults to the path given to
    ``mlplane ci``, relative to the repository it is in."""
    python: PythonVersion = "3.12"
    """The Python version CI runs mlplane with (quoted: "3.12")."""
    mlplane_version: PipVersion | None = None
    """The exact mlplane release CI installs; defaults to the version that generated the CI."""
    install: CiInstall | None = None
    """Install mlplane from a pinned commit of its repository instead of a release."""
    runner: Annotated[list[RunnerLabel], Field(min_length=1, max_length=8)] | None = None
    """Runner labels (GitHub runs-on, GitLab tags); default ubuntu-24.04 on GitHub, the shared
    runners on GitLab."""
    apply: CiApply | None = None
    """Default: production environments manual, the others automatic, each only if its state
    backend is remote (a local state file does not survive a CI job)."""
    environments: Annotated[dict[EnvName, CiEnvironment], Field(max_length=16)] = {}
    """Per-environment CI settings, such as the AWS role to assume."""
    drift: CiDrift = CiDrift()
    gitlab: CiGitlab = CiGitlab()

    @model_validator(mode="after")
    def _one_source(self) -> Ci:
        if self.install is not None and self.mlplane_version is not None:
            raise fail(
                "contradiction",
                "mlplaneVersion and install.git both say which mlplane CI installs; keep one",
            )
        return self
