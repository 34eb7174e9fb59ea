"""Feature modules; each package exposes one MODULE spec (see app.modules)."""
