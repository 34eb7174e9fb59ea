"""Notifications: outbox written with the change, dispatched by a job (see issue 3)."""
from __future__ import annotations


def register(appbuilder, app) -> None:
    """Views and jobs of the notification service."""
