"""The password policy: long enough, not a common password, not the user's own name or
identity number.  Used by citizen registration and by FAB's password forms."""
from __future__ import annotations

from flask_babel import gettext as _

MIN_LENGTH = 8
MAX_LENGTH = 128
FEWEST_DIFFERENT = 2  # "aaaaaaaa", "abababab": too few different characters
SHORTEST_OWN_WORD = 4  # a user name this short may appear in a password by chance
#: Passwords tried first by every guessing tool, and their Vietnamese favourites.
COMMON = {
    "password", "password1", "password123", "passw0rd", "12345678", "123456789",
    "1234567890", "123123123", "11111111", "00000000", "87654321", "qwertyui", "qwerty123",
    "qwertyuiop", "1q2w3e4r", "1qaz2wsx", "abc12345", "abcd1234", "iloveyou", "admin123",
    "administrator", "welcome1", "letmein1", "sunshine", "princess", "football", "baseball",
    "dragon123", "monkey123", "trustno1", "zaq12wsx", "matkhau", "matkhau1", "matkhau123",
    "123456aa", "anhyeuem", "emyeuanh", "vietnam1", "vietnam123", "hanoi123", "saigon123",
    "1234abcd", "aaaaaaaa", "asdfghjk", "zxcvbnm1", "changeme", "saoy1234", "test1234",
}


def password_problem(password: str | None, *, identity: str | None = None,
                     username: str | None = None) -> str | None:
    """Why this password may not be used, or None."""
    value = password or ""
    plain = value.strip().lower()
    if len(value) < MIN_LENGTH or len(plain) < MIN_LENGTH:
        return _("The password must have at least %(n)s characters.", n=MIN_LENGTH)
    if len(value) > MAX_LENGTH:
        return _("The password must have at most %(n)s characters.", n=MAX_LENGTH)
    if plain in COMMON or len(set(plain)) <= FEWEST_DIFFERENT:
        return _("This password is too common: choose one that is harder to guess.")
    for own in (identity, username):
        own = (own or "").strip().lower()
        if own and len(own) >= SHORTEST_OWN_WORD and own in plain:
            return _("The password must not contain your identity number or user name.")
    return None


def fab_validator(password: str) -> None:
    """FAB_PASSWORD_COMPLEXITY_VALIDATOR: the same policy on FAB's user and reset forms."""
    from wtforms import ValidationError

    if problem := password_problem(password):
        raise ValidationError(problem)
