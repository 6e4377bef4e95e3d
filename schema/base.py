"""The base of every spec object and the enumerations shared across sections."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel

from mlplane.schema import formats
from mlplane.schema.types import (
    Name,
    fail,
)

API_VERSION = "mlplane.dev/v1"
KIND = "MLSystem"

MAX_MODELS = 2_000
MAX_DATA_SOURCES = 5_000
MAX_SLAS = 5_000


class Spec(BaseModel):
    """Base of every spec object."""

    model_config = ConfigDict(
        extra="forbid",
        strict=True,
        frozen=True,
        alias_generator=to_camel,
        populate_by_name=False,
        allow_inf_nan=False,
        use_attribute_docstrings=True,
    )


Classification = Literal["public", "internal", "confidential", "pii", "phi"]
Residency = Literal[
    "global", "eu", "uk", "ch", "us", "ca", "mx", "br", "za", "il", "ae", "bh",
    "in", "sg", "id", "my", "th", "au", "nz", "jp", "kr", "hk", "tw", "cn",
]  # fmt: skip
UniqueNames = Annotated[list[Name], Field(max_length=256)]


def _no_duplicates(values: list[str], what: str) -> None:
    seen: set[str] = set()
    for value in values:
        if value in seen:
            raise fail("duplicate-name", f"{what} lists {formats.quote(value)} twice")
        seen.add(value)
