"""What both CI providers need from the system model, computed once.

The emitters see only this: the system's name, the resolved ``ci:`` settings and the spec's path
inside the repository. Every value taken from the spec here is already constrained by the schema
to a safe character set (DNS labels, branch names, runner labels, repository paths); the emitters
still put spec values only into ``env:``/``variables:``, triggers and job settings, never into a
``run:`` or ``script:`` (those come from ``scripts.py`` alone).
"""

from __future__ import annotations

from dataclasses import dataclass

from mlplane.compiler.core import ir
from mlplane.targets.ci.pins import GITLAB_IMAGES, PULUMI_CLI

SPEC_FILE_SUFFIXES = (".yaml", ".yml")
REGENERATE = "Change the spec and run `mlplane ci`: it replaces only files with this header."
GITHUB_RUNNER = "ubuntu-24.04"
"""A fixed image version rather than ubuntu-latest: the runner changes only when the spec does."""

_CRON_MACROS = {
    "@hourly": "0 * * * *",
    "@daily": "0 0 * * *",
    "@weekly": "0 0 * * 0",
    "@monthly": "0 0 1 * *",
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
}


@dataclass(frozen=True, slots=True)
class CiContext:
    system: str
    ci: ir.Ci
    spec_path: str
    """Relative to the repository root, POSIX separators; '.' for the root itself."""
    provenance: str
    """The project's generated-file header line (``compiler/core/provenance.py``)."""

    @property
    def environments(self) -> tuple[ir.CiEnvironment, ...]:
        return self.ci.environments

    @property
    def applied(self) -> tuple[ir.CiEnvironment, ...]:
        """The environments CI applies, in declared order."""
        return tuple(env for env in self.ci.environments if env.apply is not None)

    def stack(self, env: ir.CiEnvironment) -> str:
        """The lock name of one stack: one apply at a time per system and environment."""
        return f"mlplane-{self.system}-{env.name}"

    def header(self, what: str) -> list[str]:
        return [
            self.provenance,
            f"{what}; spec: {self.spec_path}. {REGENERATE}",
        ]

    def spec_glob(self, *, gitlab: bool = False) -> str:
        """The files whose change should run the pipeline (GitHub and GitLab glob dialects)."""
        if self.spec_path.endswith(SPEC_FILE_SUFFIXES):
            return self.spec_path
        tail = "**/*" if gitlab else "**"
        return tail if self.spec_path == "." else f"{self.spec_path}/{tail}"

    @property
    def cron(self) -> str:
        """The drift schedule in the five-field form both providers accept."""
        return _CRON_MACROS.get(self.ci.drift_schedule, self.ci.drift_schedule)

    @property
    def gitlab_image(self) -> str:
        return self.ci.gitlab_image or GITLAB_IMAGES[self.ci.python].image

    def shared_env(self) -> dict[str, str]:
        """The variables every job reads its settings from (scripts name only these)."""
        return {
            "MLPLANE_SPEC": self.spec_path,
            "MLPLANE_SYSTEM": self.system,
            "MLPLANE_REQUIREMENT": self.ci.mlplane_requirement,
        }


def pulumi_env() -> dict[str, str]:
    """Which Pulumi CLI to install and the checksums its archive must have."""
    return {
        "PULUMI_VERSION": PULUMI_CLI.version,
        "PULUMI_SHA256_LINUX_X64": PULUMI_CLI.sha256_linux_x64,
        "PULUMI_SHA256_LINUX_ARM64": PULUMI_CLI.sha256_linux_arm64,
        "PULUMI_SKIP_UPDATE_CHECK": "true",
    }


def needs_passphrase(env: ir.CiEnvironment) -> bool:
    """Self-managed state backends encrypt secrets with a passphrase; Pulumi Cloud does not."""
    return env.state_scheme != "https"


def session_name(system: str, env: ir.CiEnvironment) -> str:
    """An AWS role session name (at most 64 characters) that names system and environment."""
    return f"mlplane-{system}-{env.name}"[:64].rstrip("-")
