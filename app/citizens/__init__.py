"""Citizen accounts ("DVCQG account" in this system), keyed by identity number."""
