"""Offices (province → district → commune), staff membership and document types."""
