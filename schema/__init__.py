"""The mlplane spec language: pydantic models and the exported JSON Schema."""
