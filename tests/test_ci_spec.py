"""The ``ci:`` section (schema/ci.py, its resolver checks and system model) and ``mlplane ci``.

Every invalid setting is a located diagnostic with a stable code; environment names are
resolved with did-you-mean hints; overlays cannot touch ``ci``; and the command writes only its
own files, atomically, never through a symlink, with ``--check`` for stale output.
"""

from __future__ import annotations

import os
import stat
import textwrap
from pathlib import Path

import pytest
from click.testing import CliRunner

from mlplane import __version__
from mlplane.compiler.build.pipeline import CompileResult, compile_spec
from mlplane.compiler.cli.main import cli
from mlplane.compiler.core import ir
from tests.specs import BASE, write_spec

STATES = {"dev": "file://.mlplane/state", "prod": "s3://acme-state/demo"}


def spec_text(ci: str = "") -> str:
    """BASE with state backends (dev local, prod remote) and a ``ci`` section."""
    text = BASE
    for name, uri in STATES.items():
        anchor = f"  {name}:\n    target: kubernetes\n"
        text = text.replace(anchor, f"{anchor}    state: {uri}\n", 1)
    return text + textwrap.dedent(ci)


def compiled(tmp_path: Path, ci: str = "") -> CompileResult:
    return compile_spec(write_spec(tmp_path, spec_text(ci)))


SHA = "0123456789abcdef0123456789abcdef01234567"


def ci_model(result: CompileResult) -> ir.Ci:
    assert result.ok, [d.one_line() for d in result.sorted_diagnostics()]
    return next(iter(result.systems.values())).ci


def codes(result: CompileResult) -> list[tuple[str, str]]:
    return [(d.code, d.path) for d in result.sorted_diagnostics()]


# --- defaults and the system model ----------------------------------------------------------------


def test_defaults(tmp_path: Path) -> None:
    ci = ci_model(compiled(tmp_path))
    assert (ci.provider, ci.default_branch, ci.python, ci.spec_path) == (
        "github",
        "main",
        "3.12",
        None,
    )
    assert ci.mlplane_version == __version__ and ci.runner == () and ci.gitlab_image is None
    modes = {env.name: env.apply for env in ci.environments}
    assert modes == {"dev": None, "prod": "manual"}, "local state is never applied by default"


def test_explicit_settings_reach_the_model(tmp_path: Path) -> None:
    ci = ci_model(
        compiled(
            tmp_path,
            """\
            ci:
              provider: gitlab
              defaultBranch: release/2026
              specPath: deploy/demo
              python: "3.13"
              mlplaneVersion: 1.2.0rc1
              runner: [self-hosted, gpu]
              apply: {auto: [prod]}
              environments:
                prod:
                  aws: {roleArn: "arn:aws:iam::123456789012:role/deploy", region: eu-west-1}
              gitlab: {image: "python:3.13-slim@sha256:%s"}
            """
            % ("a" * 64),
        )
    )
    assert (ci.provider, ci.default_branch, ci.spec_path, ci.python) == (
        "gitlab",
        "release/2026",
        "deploy/demo",
        "3.13",
    )
    assert ci.mlplane_version == "1.2.0rc1" and ci.runner == ("self-hosted", "gpu")
    prod = next(env for env in ci.environments if env.name == "prod")
    assert prod.apply == "auto" and prod.role is not None
    assert (prod.role.role_arn, prod.role.region) == (
        "arn:aws:iam::123456789012:role/deploy",
        "eu-west-1",
    )


def test_ci_installs_the_release_or_a_pinned_commit(tmp_path: Path) -> None:
    assert ci_model(compiled(tmp_path)).mlplane_requirement == f"mlplane=={__version__}"
    settings = (
        'ci:\n  install: {git: {url: "https://git.example.org/tools/mlplane", commit: "%s"}}\n'
    )
    (tmp_path / "git").mkdir()
    ci = ci_model(compiled(tmp_path / "git", settings % SHA))
    assert ci.mlplane_requirement == f"mlplane @ git+https://git.example.org/tools/mlplane@{SHA}"


def test_environments_keep_their_declared_order(tmp_path: Path) -> None:
    text = BASE.replace("  dev:\n", "  zeta:\n    target: kubernetes\n  dev:\n", 1)
    result = compile_spec(write_spec(tmp_path, text))
    assert [env.name for env in ci_model(result).environments] == ["zeta", "dev", "prod"]


# --- invalid settings ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("ci", "code", "path"),
    [
        ("ci: {python: 3.12}", "wrong-type", "ci.python"),
        ('ci: {python: "3.10"}', "invalid-value", "ci.python"),
        ("ci: {provider: circleci}", "invalid-value", "ci.provider"),
        ('ci: {runner: ["ubuntu latest"]}', "invalid-format", "ci.runner[0]"),
        ("ci: {runner: []}", "too-short", "ci.runner"),
        ('ci: {specPath: "../elsewhere"}', "path-outside-root", "ci.specPath"),
        ('ci: {specPath: "/etc"}', "invalid-format", "ci.specPath"),
        ('ci: {specPath: "-rf"}', "invalid-format", "ci.specPath"),
        ('ci: {specPath: "a b"}', "invalid-format", "ci.specPath"),
        ('ci: {defaultBranch: "main;rm"}', "invalid-format", "ci.defaultBranch"),
        ('ci: {defaultBranch: "a..b"}', "invalid-format", "ci.defaultBranch"),
        ('ci: {mlplaneVersion: ">=0.1"}', "invalid-format", "ci.mlplaneVersion"),
        ("ci: {mlplaneVersion: 1.0}", "wrong-type", "ci.mlplaneVersion"),
        (
            'ci: {environments: {prod: {aws: {roleArn: "arn:aws:iam::123:role/x"}}}}',
            "invalid-format",
            "ci.environments.prod.aws.roleArn",
        ),
        ('ci: {gitlab: {image: "python:3.12-slim"}}', "invalid-image", "ci.gitlab.image"),
        ('ci: {drift: {schedule: "every day"}}', "invalid-cron", "ci.drift.schedule"),
        ("ci: {apply: {auto: [dev], manual: [dev]}}", "contradiction", "ci.apply"),
        ("ci: {apply: {auto: [dev, dev]}}", "duplicate-name", "ci.apply"),
        ("ci: {replica: 1}", "unknown-field", "ci.replica"),
        (
            'ci: {install: {git: {url: "http://github.com/acme/mlplane", commit: "0123456789abcdef0123456789abcdef01234567"}}}',
            "invalid-format",
            "ci.install.git.url",
        ),
        (
            'ci: {install: {git: {url: "https://user@github.com/acme/mlplane", commit: "0123456789abcdef0123456789abcdef01234567"}}}',
            "invalid-format",
            "ci.install.git.url",
        ),
        (
            'ci: {install: {git: {url: "https://github.com/acme/$(curl x)", commit: "0123456789abcdef0123456789abcdef01234567"}}}',
            "invalid-format",
            "ci.install.git.url",
        ),
        (
            'ci: {install: {git: {url: "https://github.com/acme/mlplane", commit: main}}}',
            "invalid-format",
            "ci.install.git.commit",
        ),
        (
            'ci: {install: {git: {url: "https://github.com/acme/mlplane"}}}',
            "missing-field",
            "ci.install.git.commit",
        ),
        (
            'ci: {mlplaneVersion: 0.1.0, install: {git: {url: "https://github.com/a/b", commit: "0123456789abcdef0123456789abcdef01234567"}}}',
            "contradiction",
            "ci",
        ),
    ],
)
def test_invalid_settings_are_located(tmp_path: Path, ci: str, code: str, path: str) -> None:
    result = compiled(tmp_path, ci + "\n")
    assert not result.ok
    found = result.sorted_diagnostics()
    assert (code, path) in [(d.code, d.path) for d in found], [d.one_line() for d in found]
    line = spec_text(ci + "\n").splitlines().index(ci) + 1
    assert all(d.location is not None and d.location.line == line for d in found if d.code == code)


def test_overlays_cannot_change_ci(tmp_path: Path) -> None:
    text = spec_text().replace(
        "    overrides:\n", '    overrides:\n      ci: {python: "3.13"}\n', 1
    )
    result = compile_spec(write_spec(tmp_path, text))
    assert ("unknown-field", "environments.prod.overrides.ci") in codes(result)


def test_unknown_environments_get_did_you_mean(tmp_path: Path) -> None:
    result = compiled(tmp_path, "ci:\n  apply: {manual: [prd]}\n  environments: {dve: {}}\n")
    found = {d.path: d for d in result.sorted_diagnostics()}
    assert found["ci.apply.manual[0]"].code == "ref-undefined"
    assert "did you mean 'prod'?" in found["ci.apply.manual[0]"].message
    assert "did you mean 'dev'?" in found["ci.environments.dve"].message


def test_a_role_needs_a_region(tmp_path: Path) -> None:
    ci = 'ci:\n  environments:\n    prod:\n      aws: {roleArn: "arn:aws:iam::123456789012:role/d"}\n'
    assert ("missing-field", "ci.environments.prod.aws") in codes(compiled(tmp_path, ci))


def test_unsafe_apply_choices_are_warned_about(tmp_path: Path) -> None:
    result = compiled(tmp_path, "ci:\n  apply: {auto: [dev, prod]}\n")
    assert result.ok
    assert ("ci-local-state", "ci.apply.auto[0]") in codes(result)
    assert ("ci-production-auto", "ci.apply.auto[1]") in codes(result)


# --- mlplane ci -------------------------------------------------------------------------------------


ROLE_CI = (
    'ci:\n  environments:\n    prod:\n      aws: {roleArn: "arn:aws:iam::123456789012:role/d", '
    "region: eu-west-1}\n"
)
"""prod keeps its state in S3: CI needs a role for it (else ``ci-aws-role-missing``)."""


def repository(tmp_path: Path, ci: str = ROLE_CI) -> Path:
    root = tmp_path / "repo"
    (root / ".git").mkdir(parents=True)
    (root / "deploy").mkdir()
    write_spec(root / "deploy", spec_text(ci))
    return root


def run(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(cli, list(args))
    return result.exit_code, result.output


def workflows(root: Path) -> list[str]:
    directory = root / ".github" / "workflows"
    return sorted(p.name for p in directory.iterdir()) if directory.exists() else []


def test_writes_into_the_repository_and_checks(tmp_path: Path) -> None:
    root = repository(tmp_path)
    code, output = run("ci", str(root / "deploy"))
    assert code == 0, output
    assert workflows(root) == [
        "mlplane-demo-apply.yml",
        "mlplane-demo-drift.yml",
        "mlplane-demo-pr.yml",
    ]
    pr = root / ".github" / "workflows" / "mlplane-demo-pr.yml"
    assert "MLPLANE_SPEC: deploy\n" in pr.read_text(encoding="utf-8")
    assert stat.S_IMODE(pr.stat().st_mode) == 0o644
    assert run("ci", str(root / "deploy"), "--check") == (0, "CI files are current (3 file(s))\n")
    pr.write_text(pr.read_text(encoding="utf-8") + "# edited by hand\n", encoding="utf-8")
    code, output = run("ci", str(root / "deploy"), "--check")
    assert code == 1 and "stale: .github/workflows/mlplane-demo-pr.yml" in output
    assert run("ci", str(root / "deploy"))[0] == 0
    assert run("ci", str(root / "deploy"), "--check")[0] == 0


def test_removes_only_its_own_obsolete_files(tmp_path: Path) -> None:
    root = repository(tmp_path)
    assert run("ci", str(root / "deploy"))[0] == 0
    directory = root / ".github" / "workflows"
    (directory / "mlplane-demo-old.yml").write_text(
        (directory / "mlplane-demo-pr.yml").read_text(encoding="utf-8"), encoding="utf-8"
    )
    (directory / "mlplane-demo-mine.yml").write_text("name: mine\n", encoding="utf-8")
    code, output = run("ci", str(root / "deploy"), "--check")
    assert code == 1 and "mlplane-demo-old.yml (no longer generated)" in output
    assert run("ci", str(root / "deploy"))[0] == 0
    assert not (directory / "mlplane-demo-old.yml").exists()
    assert (directory / "mlplane-demo-mine.yml").read_text(encoding="utf-8") == "name: mine\n"


def test_never_replaces_a_file_it_did_not_write(tmp_path: Path) -> None:
    root = repository(tmp_path, ROLE_CI + "  provider: gitlab\n")
    (root / ".gitlab-ci.yml").write_text("test: {script: [make]}\n", encoding="utf-8")
    code, output = run("ci", str(root / "deploy"))
    assert code == 2 and "not written by mlplane ci" in output
    assert (root / ".gitlab-ci.yml").read_text(encoding="utf-8") == "test: {script: [make]}\n"
    assert run("ci", str(root / "deploy"), "--check")[0] == 1


def test_refuses_to_write_through_a_symlink(tmp_path: Path) -> None:
    root = repository(tmp_path)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    os.symlink(elsewhere, root / ".github")
    code, output = run("ci", str(root / "deploy"))
    assert code == 2 and "symbolic link" in output
    assert list(elsewhere.iterdir()) == []


def test_out_and_spec_path(tmp_path: Path) -> None:
    root = repository(tmp_path)
    out = tmp_path / "other"
    code, output = run("ci", str(root / "deploy"), "--out", str(out))
    assert code == 2 and "ci.specPath" in output
    (tmp_path / "plain").mkdir()
    write_spec(tmp_path / "plain", spec_text(ROLE_CI))
    assert run("ci", str(tmp_path / "plain"))[0] == 2, "not in a git repository"
    code, output = run("ci", str(root / "deploy"), "--out", str(root), "--provider", "gitlab")
    assert code == 0 and (root / ".gitlab-ci.yml").exists(), output


def test_an_invalid_spec_writes_nothing(tmp_path: Path) -> None:
    root = repository(tmp_path, ROLE_CI + "  python: 3.12\n")
    code, output = run("ci", str(root / "deploy"))
    assert code == 1 and "[wrong-type]" in output
    assert workflows(root) == []


def test_unknown_provider_is_a_usage_error(tmp_path: Path) -> None:
    code, output = run("ci", str(repository(tmp_path) / "deploy"), "--provider", "jenkins")
    assert code == 2 and "choose github or gitlab" in output
