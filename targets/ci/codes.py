"""Diagnostic codes of the CI providers, registered once (see ``compiler.core.codes``); README.md
in this folder lists each with its remedy. The CI codes that the resolver raises from the spec
(``ci-production-auto``, ``ci-local-state``, ``ci-role-account``) are registered next to its CI
checks, in ``compiler/frontend/ci_checks.py``."""

from __future__ import annotations

from mlplane.compiler.core.diagnostics import register_code

CI_AWS_ROLE_MISSING = register_code(
    "ci-aws-role-missing",
    "CI applies an environment whose Pulumi state is in S3 without an AWS role to assume",
)
