"""Schema of the ``model`` config group: :class:`sieve.model.schema.ModelConfig`, derived from
:class:`sieve.model.ModelSpec` (one list of fields for both)."""

from sieve.model.schema import ModelConfig, register

__all__ = ["ModelConfig", "register"]
