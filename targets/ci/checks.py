"""What ``mlplane ci`` refuses to generate: CI that could not work once it runs.

These are not spec errors (``mlplane validate`` and a local ``mlplane apply`` with the user's own
credentials are fine): they are errors of the CI that ``mlplane ci`` would write, reported as
located diagnostics before any file is written.

- ``ci-aws-role-missing``: an environment CI applies keeps its Pulumi state in ``s3://`` but
  ``ci.environments.<env>.aws.roleArn`` names no role. The apply and drift jobs would log into
  the bucket without any AWS credentials (CI has no stored keys, by design) and fail at run time;
  located at the environment's line, the hint says where the role goes.
"""

from __future__ import annotations

from mlplane.compiler.core import ir
from mlplane.compiler.core.diagnostics import Diagnostic, Severity, format_path
from mlplane.targets.ci import codes

_NEEDS_AWS = frozenset({"s3"})
"""State backends whose credentials come from AWS (the only cloud CI gets through OIDC)."""


def check(system: ir.System) -> tuple[Diagnostic, ...]:
    """The errors that stop ``mlplane ci`` for ``system`` (empty: the CI can be written)."""
    found: list[Diagnostic] = []
    for env in system.ci.environments:
        if env.apply is None or env.state_scheme not in _NEEDS_AWS or env.role is not None:
            continue
        path = ("environments", env.name)
        found.append(
            Diagnostic(
                codes.CI_AWS_ROLE_MISSING,
                Severity.ERROR,
                f"CI applies environment {env.name!r}, whose Pulumi state is in S3, but assumes "
                "no AWS role: its apply and drift jobs would have no credentials for the state",
                system.origins.get(path),
                format_path(path),
                f"add ci.environments.{env.name}.aws.roleArn (an IAM role that trusts this CI's "
                "OpenID Connect provider, with access to the state bucket), or leave "
                f"{env.name!r} out of ci.apply",
            )
        )
    return tuple(found)
