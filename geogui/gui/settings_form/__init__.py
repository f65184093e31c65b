"""The Settings panel, built from the pydantic settings models: one validated editor per field."""
