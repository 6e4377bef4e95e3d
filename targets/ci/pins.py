"""Everything the generated CI downloads, pinned, with where each pin was verified.

One table per kind, and nothing else in ``targets/ci`` names a version or a digest:

- :data:`ACTIONS` — every ``uses:``, pinned to the full commit of a release (a tag can be moved
  to other code; a commit cannot). Each commit was checked against the action repository's own
  release history as recorded publicly: Dependabot's release-to-release compare links (computed
  by GitHub from the tags) or the release commit itself, plus independent workflows pinning the
  same commit with the same version comment. An action whose commit could not be verified is not
  used at all (the workflows use preinstalled tools instead: ``gh`` and ``jq`` for the pull
  request comment, ``curl``-free downloads through Python).
- :data:`PULUMI_CLI` — the Pulumi CLI is not an action: CI downloads the official release archive
  and checks its SHA-256 before unpacking it. Chosen over ``pulumi/actions``: a pinned action
  still downloads the CLI at run time, unverified, and runs third-party JavaScript in the job
  that holds cloud credentials; a checksum pins the exact bytes and runs nothing of anyone else's.
- :data:`GITLAB_IMAGES` — the official ``python`` images GitLab jobs run in, pinned by the digest
  of their multi-platform index. The full images, not ``-slim``: ``plan --base`` reads the base
  from git objects, and only the full images (built on ``buildpack-deps``, whose ``scm`` layer
  installs ``git``) have git; ``tests/test_ci_images.py`` checks every command the jobs call
  against the packages these images install.

Updating a pin: take the release's commit from the action's releases page (or Dependabot's PR),
the archive checksum from Pulumi's ``pulumi-<version>-checksums.txt``, the image digest from
``docker buildx imagetools inspect python:3.12``; change the table, run the tests, and
regenerate the goldens (``MLPLANE_ACCEPT=1``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType

from mlplane.compiler.core.yamltext import Commented


@dataclass(frozen=True, slots=True)
class ActionPin:
    action: str
    """owner/repository[/path] as written before the '@'."""
    commit: str
    version: str
    verified: str
    """Where the commit was checked to be this release's."""


ACTIONS: Mapping[str, ActionPin] = MappingProxyType(
    {
        "checkout": ActionPin(
            "actions/checkout",
            "11bd71901bbe5b1630ceea73d27597364c9af683",
            "v4.2.2",
            "Dependabot 'Bump actions/checkout from 4.2.1 to 4.2.2': compare "
            "eef61447b9ff4aafe5dcd4e0bbf5d482be7e7871...11bd71901bbe5b1630ceea73d27597364c9af683; "
            "ten public workflows pin it as '# v4.2.2'",
        ),
        "setup-python": ActionPin(
            "actions/setup-python",
            "a26af69be951a213d495a4c3e4e4022e16d87065",
            "v5.6.0",
            "release commit of actions/setup-python v5.6.0 as linked from its release page in "
            "several public provenance notes; ten public workflows pin it as '# v5.6.0'",
        ),
        "upload-artifact": ActionPin(
            "actions/upload-artifact",
            "ea165f8d65b6e75b540449e92b4886f43607fa02",
            "v4.6.2",
            "Dependabot 'Bump actions/upload-artifact from 4.6.1 to 4.6.2': compare "
            "4cec3d8aa04e39d1a68397de0c4cd6fb9dce8ec1...ea165f8d65b6e75b540449e92b4886f43607fa02",
        ),
        "download-artifact": ActionPin(
            "actions/download-artifact",
            "d3f86a106a0bac45b974a628896c90dbdf5c8093",
            "v4.3.0",
            "Dependabot 'Bump actions/download-artifact from 4.2.1 to 4.3.0': compare "
            "95815c38cf2ff2164869cbab79da8d1f422bc89e...d3f86a106a0bac45b974a628896c90dbdf5c8093",
        ),
        "upload-sarif": ActionPin(
            "github/codeql-action/upload-sarif",
            "ff0a06e83cb2de871e5a09832bc6a81e7276941f",
            "v3.28.18",
            "Dependabot 'Updates github/codeql-action from 3.28.16 to 3.28.18': compare "
            "v3.28.16...ff0a06e83cb2de871e5a09832bc6a81e7276941f",
        ),
        "configure-aws-credentials": ActionPin(
            "aws-actions/configure-aws-credentials",
            "b47578312673ae6fa5b5096b330d9fbac3d116df",
            "v4.2.1",
            "Dependabot 'bump aws-actions/configure-aws-credentials from 4.2.0 to 4.2.1' lists "
            "b47578312673ae6fa5b5096b330d9fbac3d116df 'chore(main): release 4.2.1 (#1356)'",
        ),
    }
)


def uses(name: str) -> Commented:
    """The ``uses:`` value of a pinned action, with its version as the line's comment."""
    pin = ACTIONS[name]
    return Commented(f"{pin.action}@{pin.commit}", pin.version)


@dataclass(frozen=True, slots=True)
class PulumiCli:
    version: str
    sha256_linux_x64: str
    sha256_linux_arm64: str
    verified: str


PULUMI_CLI = PulumiCli(
    version="3.220.0",
    sha256_linux_x64="6f00c595e0c35821cd31903d7bb328a11c3c4bdad7acd59403fbb14cfcad45ff",
    sha256_linux_arm64="2600ee0f43d8cc3756d5ba96c31864f9b246961bb7f6d8ae467ed8c270c4f66b",
    verified="NixOS/nixpkgs pkgs/by-name/pu/pulumi-bin/data.nix at commit "
    "c75b830bb6010608aea5f3123627c7582ad4e24c (generated from Pulumi's release checksums; the "
    "Nix base-32 hashes 1zs5mpy4rcgv0fadbb6pv95kq75152rpngch676j2n63w2awa03g and "
    "0sznqiqc5n3y8spdixmp3fb4dcprchcc75mssmb3gk6q8c7yw016 converted to hex)",
)


@dataclass(frozen=True, slots=True)
class ImagePin:
    image: str
    verified: str


GITLAB_IMAGES: Mapping[str, ImagePin] = MappingProxyType(
    {
        "3.11": ImagePin(
            "python:3.11@sha256:c7220863385ee39fb6d822da81f4469d0cd33ff893d92ce94105e5c3f4b95fe2",
            "docker-library/repo-info repos/python/remote/3.11.md at commit "
            "120e042a61eae69b9f85a8ab308e9815719fc936 (index digest, Python 3.11.15, Debian trixie)",
        ),
        "3.12": ImagePin(
            "python:3.12@sha256:e5931cdb4a8cec0ad083277c16a39114f14123b8b6c858c8c9689b677789975c",
            "docker-library/repo-info repos/python/remote/3.12.md at commit "
            "0531c602d6fd80edd8094917938c56dff33f491b (index digest, Python 3.12.14, Debian trixie)",
        ),
        "3.13": ImagePin(
            "python:3.13@sha256:6faba2c56370992b0456e11f781f00a09b7ecc3c4e97ef3e39163d01a94aea8d",
            "docker-library/repo-info repos/python/remote/3.13.md at commit "
            "0c376450b2d177f8478d9fd05ad2b9de6be78fd6 (index digest, Python 3.13.15, Debian trixie)",
        ),
    }
)
