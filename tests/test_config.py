"""Config is read once; a bad key stops start-up with a message naming it."""

from __future__ import annotations

from pathlib import Path

import pytest

from kundo_gdpr import config
from kundo_gdpr.cli import main

ROOT = Path(__file__).resolve().parents[1]


def test_the_shipped_config_toml_is_the_documented_defaults() -> None:
    shipped = config.load(ROOT / "config.toml")
    defaults = config.Config(root=ROOT)
    assert shipped == defaults


@pytest.mark.parametrize(
    ("text", "named"),
    [
        ("[servce]\n", "servce"),
        ("[intake]\nsource = 'pop3'\n", "intake.source"),
        ("[outbox]\nmax_attempts = 'many'\n", "outbox.max_attempts"),
        ("[policy]\nauto_approve = 1\n", "policy.auto_approve"),
        ("[service]\nsupport_addresses = 'a@b.se'\n", "service.support_addresses"),
        ("[intake.imap]\nport = -1\n", "intake.imap.port"),
        ("[database\n", "config.toml"),
        ("[service]\nsupport_addresses = []\n", "service.support_addresses"),
        ("[service]\nsupport_addresses = ['support']\n", "service.support_addresses"),
        ("[service]\nmax_attempts = 0\n", "service.max_attempts"),
        ("[web]\nbase_url = 'gdpr.kundo.se'\n", "web.base_url"),
        ("[web]\nbase_url = 'ftp://gdpr.kundo.se'\n", "web.base_url"),
        ("[web]\ntrusted_proxies = '10.0.0.1'\n", "web.trusted_proxies"),
        ("[web]\ntrusted_proxies = ['proxy.internal']\n", "web.trusted_proxies"),
        ("[web]\ntrusted_proxies = ['10.0.0.1/8']\n", "web.trusted_proxies"),
        ("[web]\ntrusted_proxies = ['10.0.0.0/33']\n", "web.trusted_proxies"),
        ("[web]\ntrusted_proxies = [10]\n", "web.trusted_proxies"),
    ],
)
def test_a_bad_key_stops_start_up_naming_the_key(
    tmp_path: Path, text: str, named: str, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "config.toml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(config.ConfigError, match=named.replace(".", r"\.")):
        config.load(path)
    assert main(["--config", str(path), "db", "upgrade"]) == 2
    assert named in capsys.readouterr().err


def test_every_config_key_is_documented_in_config_toml() -> None:
    text = (ROOT / "config.toml").read_text(encoding="utf-8")
    import dataclasses

    def keys(cls: type, prefix: str) -> list[str]:
        found = []
        for f in dataclasses.fields(cls):
            if f.name == "root":
                continue
            if dataclasses.is_dataclass(f.default_factory) if callable(  # type: ignore[arg-type]
                f.default_factory
            ) else False:
                found += keys(f.default_factory, f"{prefix}{f.name}.")  # type: ignore[arg-type]
            else:
                found.append(f"{prefix}{f.name}")
        return found

    for key in keys(config.Config, ""):
        assert f"\n{key.rsplit('.', 1)[-1]} = " in text, f"{key} is not in config.toml"


def test_secrets_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    cfg = config.Config()
    monkeypatch.setenv(cfg.intake.imap.password_env, "s3cret")
    assert cfg.secret(cfg.intake.imap.password_env) == "s3cret"


def test_a_desk_store_that_is_not_registered_stops_start_up(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "config.toml"
    path.write_text("[desk]\nstore = 'zendesk'\n", encoding="utf-8")
    assert main(["--config", str(path), "db", "upgrade"]) == 2
    err = capsys.readouterr().err
    assert "desk.store" in err and "'zendesk' is not registered (registered: sql)" in err


def test_trusted_proxies_take_addresses_and_networks_of_both_families(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_text("[web]\ntrusted_proxies = ['127.0.0.1', '10.0.0.0/8', '::1', "
                    "'fd00::/8']\n", encoding="utf-8")
    assert config.load(path).web.trusted_proxies == ("127.0.0.1", "10.0.0.0/8", "::1",
                                                     "fd00::/8")
