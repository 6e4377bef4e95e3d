"""The generated pulumi_aws class table (``targets/pulumi_aws_classes.py``) against the SDK.

Regenerating the table from the installed pulumi-aws must give the committed file byte for byte
(a drift test: a new SDK version, or a hand edit, fails here until ``python
tools/gen_aws_classes.py`` is run and the diff reviewed), and the SDK the table was made from
is the one ``requirements.txt`` pins.
"""

from __future__ import annotations

import importlib.util
from importlib.metadata import version
from pathlib import Path
from types import ModuleType

from mlplane.targets import pulumi_aws_classes
from mlplane.targets.pulumi_project import SDK_PINS
from tests.pulumi_sdk import require_pulumi_sdk

GENERATOR = Path(__file__).resolve().parent.parent / "tools" / "gen_aws_classes.py"


def generator() -> ModuleType:
    spec = importlib.util.spec_from_file_location("gen_aws_classes", GENERATOR)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_committed_table_is_what_the_installed_sdk_gives() -> None:
    require_pulumi_sdk("pulumi_aws")
    committed = Path(pulumi_aws_classes.__file__).read_text(encoding="utf-8")
    assert generator().render() == committed, "stale: run python tools/gen_aws_classes.py"


def test_the_table_comes_from_the_pinned_sdk() -> None:
    require_pulumi_sdk("pulumi_aws")
    assert pulumi_aws_classes.SDK_VERSION == version("pulumi-aws") == SDK_PINS["pulumi-aws"]


def test_every_token_has_a_row_and_every_class_is_described() -> None:
    tokens = set(generator().TOKENS)
    assert set(pulumi_aws_classes.RESOURCES) == tokens
    for _, args in pulumi_aws_classes.RESOURCES.values():
        assert args in pulumi_aws_classes.TYPES
    for fields in pulumi_aws_classes.TYPES.values():
        for _, container, item in fields.values():
            assert container in {"one", "list", "map"}
            assert item in pulumi_aws_classes.TYPES or item in {
                "str",
                "int",
                "float",
                "bool",
                "any",
            }


def test_the_s3_side_resources_use_their_init_args() -> None:
    """In pulumi_aws.s3, ``BucketVersioningArgs`` is the inline type of ``Bucket.versioning``;
    the resource's own args class is ``BucketVersioningInitArgs``."""
    resources = pulumi_aws_classes.RESOURCES
    assert resources["aws:s3/bucketVersioning:BucketVersioning"] == (
        "s3.BucketVersioning",
        "s3.BucketVersioningInitArgs",
    )
    assert resources["aws:s3/bucket:Bucket"] == ("s3.Bucket", "s3.BucketArgs")
    assert resources["pulumi:providers:aws"] == ("Provider", "ProviderArgs")
