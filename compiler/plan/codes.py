"""The diagnostic codes of ``plan``, ``apply``, ``destroy`` and ``drift``.

They are problems of a run (a git revision, the record of the last apply, the pulumi CLI), not of
a spec, so ``docs/plan.md`` documents them next to the verbs that report them and
``docs/diagnostics.md`` does not list them: they are registered after the compiler's own codes
(``compiler/core/codes.py``, imported first, computes ``CORE_CODES`` before these exist), the
way the targets and the CI providers register theirs.
"""

from __future__ import annotations

from mlplane.compiler.core import codes as core_codes  # noqa: F401  (first: see above)
from mlplane.compiler.core.diagnostics import register_code

GIT_REVISION_INVALID = register_code(
    "git-revision-invalid",
    "a git revision is malformed or looks like an option; it is refused before git runs",
)
GIT_ERROR = register_code("git-error", "git failed, or the revision names no commit")
GIT_REPOSITORY_REFUSED = register_code(
    "git-repository-refused",
    "the .git above the spec is a link, not a git directory, or a .git file pointing elsewhere",
)
PLAN_FILE_INVALID = register_code(
    "plan-file-invalid", "the record of the last apply (.mlplane/applied/) cannot be read"
)
PULUMI_UNUSABLE = register_code(
    "pulumi-unusable", "the pulumi CLI on PATH does not run or does not report its version"
)
