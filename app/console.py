"""The ``saoy`` command: Flask's CLI for this application, with short names for what an
administrator runs (``saoy db upgrade``, ``saoy init``, ``saoy worker``, ``saoy backup``…)."""
from __future__ import annotations

import sys

ALIASES = {
    "init": ["saoy", "init"], "worker": ["saoy", "worker"],
    "verify-audit": ["saoy", "audit-verify"], "backup": ["saoy", "backup"],
    "restore": ["saoy", "restore"], "keys": ["saoy", "keys"],
    "sign-agent": ["saoy", "sign-agent"], "seed": ["saoy", "seed"],
    "demo-data": ["saoy", "demo-data"], "dispatch-outbox": ["saoy", "dispatch-outbox"],
    "health": ["saoy", "health"], "files-sweep": ["saoy", "files-sweep"],
}


def main(argv: list[str] | None = None) -> None:
    from flask.cli import FlaskGroup

    args = list(sys.argv[1:] if argv is None else argv)
    if args and args[0] in ALIASES:
        args = ALIASES[args[0]] + args[1:]

    def make_app():
        from app import create_app

        return create_app()

    FlaskGroup(create_app=make_app, add_default_commands=True).main(args=args,
                                                                     prog_name="saoy")


if __name__ == "__main__":
    main()
