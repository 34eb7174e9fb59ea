"""The deployment files stay in step with the code: an administrator who copies the
environment template gets every setting the server reads, and the README documents them."""
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# Read by the signing agent on a leader's own computer, or set by the server's own
# launchers (`make demo`, deploy/gunicorn.conf.py).
READS = r"""(?:_env\w*|environ\.get|environ)\s*[(\[]\s*["'](SAOY_[A-Z0-9_]+)"""
NOT_SERVER_SETTINGS = {"SAOY_PKCS11_PIN", "SAOY_PKCS11_PIN_FILE", "SAOY_PROCESS", "SAOY_MODULES"}


def _settings_read_by_server() -> set[str]:
    names: set[str] = set()
    for path in [ROOT / "config.py", *ROOT.glob("app/**/*.py"), *ROOT.glob("modules/**/*.py")]:
        text = path.read_text(encoding="utf-8")
        names |= set(re.findall(READS, text))
    return names - NOT_SERVER_SETTINGS


def _template_settings() -> set[str]:
    text = (ROOT / "deploy" / "saoy.env.example").read_text(encoding="utf-8")
    return set(re.findall(r"^#?\s*(SAOY_[A-Z0-9_]+)=", text, re.M))


def test_finder_sees_settings():
    found = _settings_read_by_server()
    assert {"SAOY_DATABASE_URL", "SAOY_BASE_URL", "SAOY_PROXY_FIX"} <= found


def test_environment_template_lists_every_setting():
    missing = _settings_read_by_server() - _template_settings()
    assert not missing, f"deploy/saoy.env.example lacks {sorted(missing)}"


def test_readme_documents_every_setting():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    missing = {name for name in _settings_read_by_server() if f"`{name}`" not in readme}
    assert not missing, f"README.md lacks {sorted(missing)}"


def test_gunicorn_settings_are_in_the_template():
    conf = (ROOT / "deploy" / "gunicorn.conf.py").read_text(encoding="utf-8")
    assert set(re.findall(r"SAOY_[A-Z0-9_]+", conf)) - NOT_SERVER_SETTINGS <= \
        _template_settings()
