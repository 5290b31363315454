"""Test-suite wide settings; the fixtures themselves come from the package's pytest plugin."""
