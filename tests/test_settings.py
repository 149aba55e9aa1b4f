"""Configuration precedence: defaults < file < environment."""

from pathlib import Path

import pytest

from flows.settings import ConfigError, load_settings


def test_defaults_have_real_feeds_and_local_paths():
    settings = load_settings(env={})
    assert settings.source == "built-in defaults"
    assert len(settings.feeds) >= 10 and all(f.url.startswith("https://") for f in settings.feeds)
    assert settings.storage.path == Path("data/atlaswatch.db")
    assert settings.email.outbox == Path("data/outbox") and settings.email.smtp_host == ""
    assert settings.fetch.allow_private_networks is False


def test_file_overrides_only_its_keys_and_paths_are_relative_to_it(tmp_path):
    config = tmp_path / "conf.toml"
    config.write_text(
        '[storage]\npath = "db/a.db"\n[email]\nsmtp_port = 2525\n'
        '[[feeds]]\nurl = "https://x.example/rss"\nname = "X"\n'
    )
    settings = load_settings(config, env={})
    assert settings.storage.path == tmp_path / "db/a.db"
    assert settings.email.smtp_port == 2525 and settings.email.starttls is True
    assert [f.url for f in settings.feeds] == ["https://x.example/rss"]


def test_environment_overrides_the_file_and_the_variable_names_the_file(tmp_path):
    config = tmp_path / "conf.toml"
    config.write_text('[email]\nsmtp_host = "file.example"\n')
    env = {
        "ATLASWATCH_CONFIG": str(config),
        "ATLASWATCH_EMAIL_SMTP_HOST": "env.example",
        "ATLASWATCH_FETCH_ALLOW_PRIVATE_NETWORKS": "true",
        "ATLASWATCH_EMAIL_RECIPIENTS": "a@x, b@y",
    }
    settings = load_settings(env=env)
    assert settings.email.smtp_host == "env.example"
    assert settings.fetch.allow_private_networks is True
    assert settings.email.recipients == ("a@x", "b@y")


def test_password_comes_from_the_environment_only(tmp_path, monkeypatch):
    config = tmp_path / "conf.toml"
    config.write_text('[email]\npassword_env = "MY_SMTP_SECRET"\n')
    monkeypatch.setenv("MY_SMTP_SECRET", "s3cret")
    assert load_settings(config, env={}).email.password == "s3cret"
    config.write_text('[email]\npassword = "in the file"\n')
    with pytest.raises(ConfigError, match="unknown key"):
        load_settings(config, env={})


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[storage\n", "not valid TOML"),
        ("[nope]\n", "unknown section"),
        ("[fetch]\nmax_redirects = 'x'\n", "should be"),
        ("[[feeds]]\nname = 'no url'\n", "needs url"),
        ("[fetch]\nallow_private_networks = 'yes'\n", "should be"),
    ],
)
def test_bad_files_say_what_is_wrong(tmp_path, text, message):
    config = tmp_path / "conf.toml"
    config.write_text(text)
    with pytest.raises(ConfigError, match=message):
        load_settings(config, env={})


def test_missing_file_is_a_clear_error(tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        load_settings(tmp_path / "absent.toml", env={})
