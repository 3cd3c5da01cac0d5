"""deploy/: the systemd units are valid, the example production config loads, and
every secret it names is in the example secrets file, not in the config."""

from __future__ import annotations

import configparser
import dataclasses
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from kundo_gdpr import config as config_module
from kundo_gdpr.cli import build_parser

ROOT = Path(__file__).resolve().parent.parent
DEPLOY = ROOT / "deploy"
UNITS = ("kundo-gdpr-worker@.service", "kundo-gdpr-web.service")
INSTALLED = "/opt/kundo-gdpr/.venv/bin/kundo-gdpr"
# The directives the units use, for the check without systemd-analyze.
KNOWN = {
    "Unit": {"Description", "Documentation", "Wants", "After", "Requires"},
    "Service": {"Type", "User", "Group", "WorkingDirectory", "Environment", "EnvironmentFile",
                "ExecStart", "Restart", "RestartSec", "TimeoutStopSec", "KillSignal",
                "NoNewPrivileges", "PrivateTmp", "ProtectSystem", "ProtectHome",
                "ReadWritePaths", "ProtectKernelTunables", "ProtectKernelModules",
                "ProtectControlGroups", "RestrictAddressFamilies", "LockPersonality"},
    "Install": {"WantedBy"},
}


def _installable(unit: str, folder: Path) -> Path:
    """The unit as installed: its ExecStart pointing at this checkout's command,
    its EnvironmentFile at the example, and a template given an instance name."""
    text = (DEPLOY / unit).read_text()
    text = text.replace(INSTALLED, str(Path(sys.executable).parent / "kundo-gdpr"))
    text = text.replace("/etc/kundo-gdpr/secrets.env", str(DEPLOY / "secrets.env.example"))
    path = folder / unit.replace("@.", "@1.")
    path.write_text(text)
    return path


@pytest.mark.parametrize("unit", UNITS)
def test_the_systemd_units_verify(unit: str, tmp_path: Path) -> None:
    path = _installable(unit, tmp_path)
    analyze = shutil.which("systemd-analyze")
    if analyze is None:  # no systemd here: check the directives ourselves
        _check_without_systemd(path)
        return
    done = subprocess.run([analyze, "verify", str(path)], capture_output=True, text=True,
                          cwd=tmp_path)
    # Unknown keys and bad values are only warnings (exit 0): none may be printed.
    assert done.returncode == 0 and done.stderr == "", done.stderr


def _check_without_systemd(path: Path) -> None:
    parser = configparser.ConfigParser(strict=False, interpolation=None)
    parser.optionxform = str  # type: ignore[assignment,method-assign]
    parser.read_string(path.read_text())
    assert set(parser.sections()) == set(KNOWN)
    for section in parser.sections():
        unknown = set(parser[section]) - KNOWN[section]
        assert not unknown, f"{path.name} [{section}]: {unknown}"
    command = parser["Service"]["ExecStart"].split()
    assert Path(command[0]).exists()


def test_the_units_run_commands_the_cli_has() -> None:
    for unit in UNITS:
        text = (DEPLOY / unit).read_text()
        (line,) = [ln for ln in text.splitlines() if ln.startswith("ExecStart=")]
        args = line.split()[1:]
        assert build_parser().parse_args(args).handler.__name__.startswith("cmd_")


def test_the_production_config_loads_and_keeps_every_secret_in_the_environment() -> None:
    config = config_module.load(DEPLOY / "config.production.toml")
    assert config.database.url.startswith("postgresql+psycopg://")
    assert (config.intake.source, config.intake.imap.security) == ("imap", "tls")
    assert (config.outbox.transport, config.outbox.smtp.security) == ("smtp", "starttls")
    named = sorted(_env_names(config))
    example = (DEPLOY / "secrets.env.example").read_text()
    for name in named:
        assert f"\n{name}=" in example, f"{name} is not in secrets.env.example"
    text = (DEPLOY / "config.production.toml").read_text()
    assert not re.search(r"(?m)^\s*(password|secret|token)\s*=", text)
    assert ":" not in config.database.url.split("@")[0].split("//")[1]  # no password in URL


def _env_names(obj: object) -> set[str]:
    names: set[str] = set()
    for field in dataclasses.fields(obj):  # type: ignore[arg-type]
        value = getattr(obj, field.name)
        if field.name.endswith("_env"):
            names.add(value)
        elif dataclasses.is_dataclass(value):
            names |= _env_names(value)
    return names


def test_the_readme_says_how_to_run_in_production() -> None:
    readme = (ROOT / "README.md").read_text()
    section = readme.split("## Running in production", 1)[1].split("\n## ", 1)[0]
    for needed in ("kundo-gdpr db upgrade", "kundo-gdpr check", "kundo-gdpr-worker@",
                   "proxy", "trusted_proxies", "X-Forwarded-For", "pg_dump", "ledger replay"):
        assert needed in section, needed
