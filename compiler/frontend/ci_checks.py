"""The resolver's checks of the ``ci:`` section, and the codes they raise.

Environment names in ``ci:`` must exist; the role CI assumes needs a region (its own, or the
one the environment's target deploys into: ``Target.cloud_account``) and is expected in that
target's account; CI should not apply a production environment without a gate, nor one whose
state is a local file. The codes are registered after the compiler's own
(``compiler/core/codes.py`` computes ``CORE_CODES`` first), like the CI providers' codes in
``targets/ci/codes.py``: ``targets/ci/README.md`` documents them all.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from mlplane.compiler.core import codes, plugins
from mlplane.compiler.core.diagnostics import SpecPath, register_code
from mlplane.compiler.frontend.system_model import is_production
from mlplane.schema import models as spec
from mlplane.schema.ci import ROLE_KEY, CiRole

if TYPE_CHECKING:
    from mlplane.compiler.frontend.resolve import Resolver

W = codes.W

CI_PRODUCTION_AUTO = register_code(
    "ci-production-auto", "a production environment is applied by CI without a manual gate", W
)
CI_LOCAL_STATE = register_code(
    "ci-local-state", "CI applies an environment whose Pulumi state is a local file", W
)
CI_ROLE_ACCOUNT = register_code(
    "ci-role-account", "the AWS role CI assumes is in another account than the environment", W
)


def check(resolver: Resolver) -> None:
    """Environment names in ``ci:`` exist, and each role CI assumes has a region to use."""
    ci, envs = resolver.spec.ci, resolver.spec.environments
    lists = (("auto", ci.apply.auto), ("manual", ci.apply.manual)) if ci.apply else ()
    for field, names in lists:
        for index, name in enumerate(names):
            resolver.expect(name, envs, ("ci", "apply", field, index), "environment")
    for name, settings in ci.environments.items():
        path: SpecPath = ("ci", "environments", name)
        if resolver.expect(name, envs, path, "environment") and settings.role is not None:
            _check_role(resolver, name, settings.role, (*path, ROLE_KEY))
    for name, env in envs.items():
        _check_apply(resolver, name, env)


def _check_role(resolver: Resolver, name: str, role: CiRole, path: SpecPath) -> None:
    """The role needs a region (its own, or the one the environment's target deploys into,
    ``Target.cloud_account``) and is expected in the environment's account."""
    placed = plugins.cloud_account(resolver.spec.environments[name])
    document, diagnostics = resolver.document, resolver.diagnostics
    if role.region is None and placed is None:
        diagnostics.error(
            codes.MISSING_FIELD,
            f"ci role for environment {name!r} needs a region: the environment's settings "
            "name no region to take it from",
            document.location(path),
            path,
            "add region: eu-west-1 (the region CI requests credentials in)",
        )
    account = role.role_arn.split(":")[4]
    if placed is not None and account != placed.account_id:
        diagnostics.warning(
            CI_ROLE_ACCOUNT,
            f"CI assumes a role in account {account} but environment {name!r} runs in "
            f"account {placed.account_id}",
            document.value_location((*path, "roleArn")),
            (*path, "roleArn"),
        )


def _check_apply(resolver: Resolver, name: str, env: spec.Environment) -> None:
    """Warn about what CI would apply unsafely: production without a gate, local state."""
    apply = resolver.spec.ci.apply
    if apply is None:
        return  # the defaults never do either
    document, diagnostics = resolver.document, resolver.diagnostics
    if is_production(name, env) and name in apply.auto:
        path: SpecPath = ("ci", "apply", "auto", apply.auto.index(name))
        diagnostics.warning(
            CI_PRODUCTION_AUTO,
            f"production environment {name!r} is applied on every merge without a manual gate",
            document.value_location(path),
            path,
            "move it to ci.apply.manual, or protect it with required reviewers",
        )
    listed = name in apply.auto or name in apply.manual
    if listed and (env.state is None or env.state.startswith("file:")):
        field = "auto" if name in apply.auto else "manual"
        path = ("ci", "apply", field, getattr(apply, field).index(name))
        diagnostics.warning(
            CI_LOCAL_STATE,
            f"CI applies environment {name!r}, whose Pulumi state is a local file: every CI "
            "job would start from empty state and try to create everything again",
            document.value_location(path),
            path,
            f"set environments.{name}.state to a remote backend (s3://, gs://, azblob://, https://)",
        )
