"""Outbox tables (filled in by the notifications service)."""
