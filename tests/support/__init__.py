"""Helpers shared by the unit, parity and pipeline tests (importable because tests/conftest.py sits beside this)."""
