"""Shared helpers for the parts a CampaignService is made of (one module per mode)."""

from __future__ import annotations

from typing import TypeVar

from ecommerce_core.errors import DefinitionError

_Repository = TypeVar("_Repository")


def required(repository: _Repository | None, field: str, mode: str) -> _Repository:
    """``repository``, or a :class:`DefinitionError` saying the service was built without it.

    Raises:
        DefinitionError: ``repository`` is ``None``: the host did not offer ``mode``.

    """
    if repository is None:
        raise DefinitionError(
            "CampaignService", [f"built without {field}=..., so {mode} is not offered"]
        )
    return repository
