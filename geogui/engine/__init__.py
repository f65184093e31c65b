"""The headless engine: model, rotator, modes, trainer and run logs. Imports no Qt."""
