"""Every command a GitLab job runs exists in the image the job runs in.

GitLab jobs run in a pinned official ``python`` image (``targets/ci/pins.py``). ``mlplane plan
--base`` reads the base revision from git objects, so a plan job in an image without git fails
at run time although every static judge accepts the file. This test derives what each image
provides from the packages its Dockerfile installs, as recorded by docker-library/repo-info
(``repos/python/remote/<tag>.md``, the commits cited in ``pins.py``), and checks every command
of every script of every GitLab job of every example against it:

- Debian's base (``debian.sh ... 'trixie'``, minbase: the Essential and required packages);
- the full ``python:<version>`` images add buildpack-deps' layers: ``ca-certificates curl gnupg
  netbase sq wget``, then ``git mercurial openssh-client subversion procps``, then the build
  tools; and Python itself, built from source into /usr/local (``python``, ``pip``);
- the ``-slim`` images add only ``ca-certificates netbase tzdata`` and Python (no git, no curl).

Commands are found by reading the scripts as POSIX sh: the first word of every simple command
(after ``;``, ``|``, ``&&``, ``||``, ``$(``, ``{``, ``then``, ``else``, ``do`` and ``case``
patterns), here-documents skipped, shell builtins set aside. Commands that the scripts run
indirectly are added: ``mlplane plan --base`` runs ``git``.
"""

from __future__ import annotations

import re
import shlex
from pathlib import Path
from typing import Any

import pytest

from mlplane.targets.ci import emit
from mlplane.targets.ci.pins import GITLAB_IMAGES
from mlplane.targets.ci.scripts import SCRIPTS
from tests.test_ci import CASES, case_system

# --- what the images install (docker-library/repo-info, see the module docstring) -------------

DEBIAN_BASE = ("coreutils", "dash", "bash", "grep", "sed", "tar", "gzip", "findutils", "diffutils")
"""Essential packages of every Debian image (minbase), the ones the scripts could use."""
BUILDPACK_DEPS = (
    "ca-certificates",
    "curl",
    "gnupg",
    "netbase",
    "sq",
    "wget",
    "git",
    "mercurial",
    "openssh-client",
    "subversion",
    "procps",
    "make",
    "patch",
    "unzip",
    "xz-utils",
    "file",
)
SLIM_EXTRA = ("ca-certificates", "netbase", "tzdata")
PYTHON_BUILD = ("python",)
"""CPython built from source into /usr/local/bin (python, python3, pip, pip3)."""


def image_packages(image: str) -> frozenset[str]:
    """The packages of an official python image, by the variant its tag names."""
    name, _, _digest = image.partition("@")
    repository, _, tag = name.partition(":")
    assert repository in ("python", "docker.io/library/python"), image
    extra = SLIM_EXTRA if "slim" in tag else BUILDPACK_DEPS
    return frozenset((*DEBIAN_BASE, *extra, *PYTHON_BUILD))


COMMAND_PACKAGE = {
    **dict.fromkeys(
        ("cat", "cp", "mkdir", "rm", "uname", "sha256sum", "tr", "env", "mktemp"), "coreutils"
    ),
    "tar": "tar",
    "grep": "grep",
    "sed": "sed",
    "git": "git",
    "curl": "curl",
    "python": "python",
    "pip": "python",
}
"""Which Debian package (or the source-built python) provides each command; a command missing
here fails the test, so a new one in a script must be placed explicitly."""

INSTALLED_BY_THE_JOB = {"mlplane": "install-mlplane"}
"""Commands a job's own script installs first (``pip install mlplane``)."""

BUILTINS = frozenset(
    [
        "set",
        "case",
        "esac",
        "in",
        "if",
        "then",
        "else",
        "elif",
        "fi",
        "for",
        "do",
        "done",
        "while",
        "echo",
        "printf",
        "exit",
        "export",
        "unset",
        "umask",
        "command",
        "test",
        "[",
        ":",
        ".",
        "cd",
        "read",
        "true",
        "false",
        "shift",
        "return",
    ]
)
_STARTS = frozenset({";", ";;", "|", "||", "&&", "(", "$(", "!", "{", "then", "else", "do", "if"})
_SUBSTITUTION = re.compile(r"\$\(((?:[^()]|\([^()]*\))*)\)")


def commands(script: str) -> set[str]:
    """The commands ``script`` runs directly (see the module docstring)."""
    lines: list[str] = []
    heredoc: str | None = None
    for line in script.replace("\\\n", " ").splitlines():
        if heredoc is not None:
            heredoc = None if line.strip() == heredoc else heredoc
            continue
        marker = re.search(r"<<-?\s*'?(\w+)'?", line)
        if marker:
            heredoc = marker.group(1)
        lines.append(line)
    return _commands("\n".join(lines)) - BUILTINS


def _commands(text: str) -> set[str]:
    found: set[str] = set()
    for line in text.splitlines():
        lexer = shlex.shlex(line, posix=True, punctuation_chars=True)
        lexer.whitespace_split = True
        tokens = list(lexer)
        if ")" in tokens and ("(" not in tokens or tokens.index(")") < tokens.index("(")):
            tokens = tokens[tokens.index(")") + 1 :]  # a case pattern: the command follows
        expect = True
        for token in tokens:
            for inner in _SUBSTITUTION.findall(token):
                found |= _commands(inner)
            if token in _STARTS:
                expect = True
            elif token in ("}", ")", "fi", "esac", "done") or set(token) & set("<>"):
                expect = False
            elif expect and not re.match(r"^[A-Za-z_]\w*=", token):
                if not token.startswith("$"):  # else a program the script itself unpacked
                    found.add(token)
                expect = False
    return found


def indirect(script: str) -> set[str]:
    """Commands that mlplane runs for the script: ``plan --base`` reads git objects."""
    return {"git"} if "--base=" in script else set()


def test_the_reader_finds_the_commands_of_the_scripts() -> None:
    assert commands(SCRIPTS["plan"]) == {"mkdir", "mlplane", "cat"}
    assert {"uname", "rm", "mkdir", "python", "sha256sum", "tar"} <= commands(
        SCRIPTS["install-pulumi"]
    )
    assert "call" not in commands(SCRIPTS["note-gitlab"])  # inside the Python here-document
    assert indirect(SCRIPTS["plan"]) == {"git"}


def test_the_slim_images_lack_git() -> None:
    """The reason the pins changed: the -slim variants install no git."""
    assert "git" not in image_packages("python:3.12-slim@sha256:" + "0" * 64)
    assert "git" in image_packages(GITLAB_IMAGES["3.12"].image)


@pytest.mark.parametrize("case", CASES)
def test_every_gitlab_job_finds_its_commands_in_its_image(case: str, tmp_path: Path) -> None:
    system = case_system(case, tmp_path)
    files = emit(system, "gitlab", f"examples/{case}")
    from mlplane.compiler.core.yamltext import load

    doc: Any = load(files[".gitlab-ci.yml"])
    image = doc["default"]["image"]
    provided = image_packages(image)
    for name, job in doc.items():
        if not name.startswith("mlplane-"):
            continue
        installed = {
            command
            for command, script in INSTALLED_BY_THE_JOB.items()
            if SCRIPTS[script] in job["script"]
        }
        for script in job["script"]:
            for command in sorted(commands(script) | indirect(script)):
                if command in installed:
                    continue
                assert command in COMMAND_PACKAGE, f"{name}: which package provides {command!r}?"
                package = COMMAND_PACKAGE[command]
                assert package in provided, (
                    f"{name} runs {command!r} (Debian package {package!r}), "
                    f"which {image} does not install"
                )
