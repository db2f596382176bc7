"""Pieces shared by the apps and the project: they depend on Django and DRF,
never on ``portal`` or on an app."""
