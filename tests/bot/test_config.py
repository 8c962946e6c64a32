"""Slack settings: every missing or malformed value fails with one line naming it, never echoing a secret."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from corpusbot.bot import config
from corpusbot.bot.cli import cli
from corpusbot.bot.config import ConfigError, RateLimit, Settings
from corpusbot.index.engine import store
from corpusbot.index.search.service import SearchService
from tests.support.fake_slack import APP_TOKEN, BOT_TOKEN, FakeSlack

SECRET_PART = "s3cr3tVALUE"


def env(**values: str) -> dict[str, str]:
    return {"SLACK_BOT_TOKEN": BOT_TOKEN, "SLACK_SIGNING_SECRET": "abcdef0123456789", **values}


def test_http_mode_settings() -> None:
    settings = config.settings_from_env(env(CORPUSBOT_ADMINS="U0ADMIN1, W0ADMIN2", CORPUSBOT_CHANNELS="C0AAA,G0BBB"))
    config.check_slack(settings)
    assert not settings.socket_mode
    assert settings.admins == {"U0ADMIN1", "W0ADMIN2"}
    assert settings.channels == {"C0AAA", "G0BBB"}
    assert settings.rate_limit == config.DEFAULT_RATE_LIMIT
    assert settings.api_url == "https://slack.com/api/"


def test_socket_mode_needs_no_signing_secret() -> None:
    settings = config.settings_from_env({"SLACK_BOT_TOKEN": BOT_TOKEN, "SLACK_APP_TOKEN": APP_TOKEN})
    config.check_slack(settings)
    assert settings.socket_mode


def test_slack_api_url_gets_the_trailing_slash_slack_sdk_needs() -> None:
    assert config.settings_from_env(env(SLACK_API_URL="http://127.0.0.1:9/api")).api_url == "http://127.0.0.1:9/api/"
    assert (
        config.settings_from_env(env(SLACK_API_URL="https://slack-gov.com/api/")).api_url
        == "https://slack-gov.com/api/"
    )


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("", config.DEFAULT_RATE_LIMIT),
        ("5/10", RateLimit(5, 10.0)),
        ("30 / 60s", RateLimit(30, 60.0)),
        ("off", RateLimit(0, 60.0)),
    ],
)
def test_rate_limit_setting(value: str, expected: RateLimit) -> None:
    assert config.settings_from_env(env(CORPUSBOT_RATE_LIMIT=value)).rate_limit == expected


@pytest.mark.parametrize(
    ("values", "named", "hint"),
    [
        ({"SLACK_BOT_TOKEN": ""}, "SLACK_BOT_TOKEN", "xoxb-"),
        ({"SLACK_BOT_TOKEN": f"xoxp-{SECRET_PART}"}, "SLACK_BOT_TOKEN", "xoxb-"),
        ({"SLACK_BOT_TOKEN": f'"xoxb-{SECRET_PART}"'}, "SLACK_BOT_TOKEN", "without quotes"),
        ({"SLACK_APP_TOKEN": f"xoxb-{SECRET_PART}"}, "SLACK_APP_TOKEN", "xapp-"),
        ({"SLACK_SIGNING_SECRET": ""}, "SLACK_SIGNING_SECRET", "Socket Mode"),
        ({"CORPUSBOT_ADMINS": "@alice"}, "CORPUSBOT_ADMINS", "user IDs"),
        ({"CORPUSBOT_CHANNELS": "#general"}, "CORPUSBOT_CHANNELS", "channel IDs"),
        ({"CORPUSBOT_RATE_LIMIT": "lots"}, "CORPUSBOT_RATE_LIMIT", "20/60"),
        ({"SLACK_API_URL": "slack.com/api"}, "SLACK_API_URL", "http"),
    ],
)
def test_bad_settings_name_the_variable_and_the_fix(values: dict[str, str], named: str, hint: str) -> None:
    with pytest.raises(ConfigError) as caught:
        config.check_slack(config.settings_from_env(env(**values)))
    message = str(caught.value)
    assert message.startswith(named) or f" {named} " in f" {message} "
    assert hint in message
    assert ".env" in message
    assert SECRET_PART not in message
    assert "\n" not in message


def test_secrets_are_not_in_the_settings_repr() -> None:
    settings = config.settings_from_env(env(SLACK_APP_TOKEN=APP_TOKEN))
    assert (
        BOT_TOKEN not in repr(settings) and APP_TOKEN not in repr(settings) and "abcdef0123456789" not in repr(settings)
    )


@pytest.fixture
def in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)  # no stray .env from the working tree
    for name in ("SLACK_BOT_TOKEN", "SLACK_APP_TOKEN", "SLACK_SIGNING_SECRET", "SLACK_API_URL", "CORPUSBOT_ADMINS"):
        monkeypatch.delenv(name, raising=False)
    return tmp_path


def test_serve_with_a_malformed_token_exits_with_one_line_and_no_traceback(
    runner, in_tmp: Path, sample_db: Path
) -> None:
    result = runner.invoke(cli, ["serve", "--db", str(sample_db)], env={"SLACK_BOT_TOKEN": f"xoxp-{SECRET_PART}"})
    assert result.exit_code == 1
    assert result.output.startswith("Error: SLACK_BOT_TOKEN does not look like a bot token")
    assert result.output.count("\n") == 1
    assert SECRET_PART not in result.output
    assert "Traceback" not in result.output


def test_serve_without_a_signing_secret_in_http_mode_says_how_to_fix_it(runner, in_tmp: Path, sample_db: Path) -> None:
    result = runner.invoke(cli, ["serve", "--db", str(sample_db)], env={"SLACK_BOT_TOKEN": BOT_TOKEN})
    assert result.exit_code == 1
    assert "SLACK_SIGNING_SECRET is not set" in result.output and "SLACK_APP_TOKEN" in result.output


def test_serve_reads_the_dotenv_file(runner, in_tmp: Path, sample_db: Path) -> None:
    (in_tmp / ".env").write_text(f"SLACK_BOT_TOKEN=xoxp-{SECRET_PART}\n", encoding="utf-8")
    result = runner.invoke(cli, ["serve", "--db", str(sample_db)])
    assert result.exit_code == 1 and "SLACK_BOT_TOKEN does not look like a bot token" in result.output


def test_serve_with_a_token_slack_rejects_exits_cleanly(runner, in_tmp: Path, sample_db: Path) -> None:
    with FakeSlack() as slack:
        result = runner.invoke(
            cli,
            ["serve", "--db", str(sample_db)],
            env={
                "SLACK_BOT_TOKEN": f"xoxb-{SECRET_PART}",
                "SLACK_SIGNING_SECRET": "abcdef0123456789",
                "SLACK_API_URL": slack.api_url,
            },
        )
    assert result.exit_code == 1
    assert result.output.startswith("Error: Slack rejected SLACK_BOT_TOKEN (invalid_auth).")
    assert SECRET_PART not in result.output and "Traceback" not in result.output


def test_serve_when_slack_cannot_be_reached_exits_cleanly(runner, in_tmp: Path, sample_db: Path) -> None:
    result = runner.invoke(
        cli,
        ["serve", "--db", str(sample_db)],
        env={
            "SLACK_BOT_TOKEN": BOT_TOKEN,
            "SLACK_SIGNING_SECRET": "abcdef0123456789",
            "SLACK_API_URL": "http://127.0.0.1:9/api/",
        },
    )
    assert result.exit_code == 1
    assert "Cannot reach the Slack API at http://127.0.0.1:9/api/" in result.output
    assert "Traceback" not in result.output


def test_feedback_on_a_missing_database_is_a_clean_error(runner, in_tmp: Path) -> None:
    result = runner.invoke(cli, ["feedback", "--db", str(in_tmp / "none.db")])
    assert result.exit_code == 1 and "corpusbot index" in result.output


def test_feedback_on_a_database_without_feedback(runner, sample_db: Path) -> None:
    assert runner.invoke(cli, ["feedback", "--db", str(sample_db)]).output == "No feedback yet.\n"
    assert runner.invoke(cli, ["feedback", "--json", "--db", str(sample_db)]).output == "[]\n"


def test_settings_defaults_are_safe() -> None:
    settings = Settings()
    assert settings.channels == frozenset() and settings.admins == frozenset() and settings.rate_limit.enabled


def test_tokens_and_secrets_are_masked_in_logs(caplog: pytest.LogCaptureFixture) -> None:
    from corpusbot.bot.ops import logsafe

    logsafe.configure(secrets=("abcdef0123456789", "short"))  # masks in every handler on the root logger
    logger = logging.getLogger("corpusbot.test")
    with caplog.at_level(logging.INFO):
        logger.info("calling with %s and %s", BOT_TOKEN, APP_TOKEN)
        logger.info("secret=abcdef0123456789 user token xoxp-9-8-7 and a short word")
    text = caplog.text
    for secret in (BOT_TOKEN, APP_TOKEN, "abcdef0123456789", "xoxp-9-8-7"):
        assert secret not in text
    assert "xoxb-[redacted]" in text and "xapp-[redacted]" in text and "short word" in text


def test_the_state_database_is_read_from_corpusbot_state_db() -> None:
    assert config.state_db_path({}) is None  # beside the index
    assert config.state_db_path({"CORPUSBOT_STATE_DB": "  "}) is None
    assert config.state_db_path({"CORPUSBOT_STATE_DB": " /data/state.db "}) == "/data/state.db"
    assert config.settings_from_env(env(CORPUSBOT_STATE_DB="s.db")).state_db_path == "s.db"
    assert config.settings_from_env(env()).state_db_path is None


# -- CORPUSBOT_STATE_URL: the state every replica shares, in PostgreSQL -----------------------------------------

STATE_PASSWORD = "pg-S3cret-pw-4242"


def test_without_a_state_url_the_state_stays_in_the_sqlite_file() -> None:
    assert config.state_url({}) is None
    assert config.state_url({"CORPUSBOT_STATE_URL": "  "}) is None
    assert config.settings_from_env(env()).state_url is None


@pytest.mark.parametrize(
    "value",
    [
        f"postgresql://bot:{STATE_PASSWORD}@db.internal:5432/corpusbot",
        f"postgres://bot:{STATE_PASSWORD}@db.internal:5432/corpusbot",
        f"postgresql://bot@db.internal:5432/corpusbot?password={STATE_PASSWORD}&sslmode=require",
    ],
)
def test_a_state_url_is_read_and_shown_without_credentials(value: str) -> None:
    settings = config.settings_from_env(env(CORPUSBOT_STATE_URL=f" {value} "))
    url = settings.state_url
    assert url is not None and url.value == value
    assert url.password == STATE_PASSWORD
    assert url.display == f"{value.split(':', 1)[0]}://db.internal:5432/corpusbot"
    for shown in (url.display, str(url), repr(url), repr(settings)):
        assert STATE_PASSWORD not in shown and "bot@" not in shown and "bot:" not in shown


def test_a_state_url_on_a_unix_socket_or_ipv6_host_is_accepted() -> None:
    assert config.state_url({"CORPUSBOT_STATE_URL": "postgresql:///corpusbot?host=/run/postgresql"}) is not None
    url = config.state_url({"CORPUSBOT_STATE_URL": f"postgresql://bot:{STATE_PASSWORD}@[::1]:5433/x"})
    assert url is not None and url.display == "postgresql://[::1]:5433/x"


@pytest.mark.parametrize(
    ("value", "hint"),
    [
        (f"CHANGE-ME-postgresql://USER:{STATE_PASSWORD}@HOST:5432/corpusbot", "postgresql://"),  # the k8s template
        (f"mysql://bot:{STATE_PASSWORD}@db:3306/corpusbot", "postgresql://"),
        ("sqlite:///var/lib/corpusbot/state.db", "postgresql://"),
        ("/var/lib/corpusbot/state.db", "postgresql://"),
        (f"postgresql:bot:{STATE_PASSWORD}@db/corpusbot", "postgresql://"),
        (f"postgresql://bot:{STATE_PASSWORD}@db:port/corpusbot", "not a well-formed URL"),
        (f"postgresql://bot:{STATE_PASSWORD}@db:99999/corpusbot", "not a well-formed URL"),
        (f"postgresql://bot:{STATE_PASSWORD} x@db/corpusbot", "spaces"),
        (f"'postgresql://bot:{STATE_PASSWORD}@db/corpusbot'", "quotes"),
    ],
)
def test_a_malformed_state_url_is_refused_at_start_naming_the_variable_and_the_fix(value: str, hint: str) -> None:
    with pytest.raises(ConfigError) as caught:
        config.settings_from_env(env(CORPUSBOT_STATE_URL=value))
    message = str(caught.value)
    assert message.startswith("CORPUSBOT_STATE_URL ") and hint in message
    assert "postgresql://USER:PASSWORD@HOST:5432/DBNAME" in message and ".env" in message
    assert STATE_PASSWORD not in message and "\n" not in message


def test_a_state_url_and_a_state_file_together_are_refused() -> None:
    with pytest.raises(ConfigError, match="CORPUSBOT_STATE_URL and CORPUSBOT_STATE_DB are both set"):
        config.settings_from_env(
            env(CORPUSBOT_STATE_URL="postgresql://db/corpusbot", CORPUSBOT_STATE_DB="/data/state.db")
        )


def test_serve_with_a_malformed_state_url_exits_with_one_line(runner, in_tmp: Path, sample_db: Path) -> None:
    result = runner.invoke(
        cli,
        ["serve", "--db", str(sample_db)],
        env={
            "SLACK_BOT_TOKEN": BOT_TOKEN,
            "SLACK_SIGNING_SECRET": "abcdef0123456789",
            "CORPUSBOT_STATE_URL": f"mysql://bot:{STATE_PASSWORD}@db/corpusbot",
            "CORPUSBOT_STATE_DB": "",
        },
    )
    assert result.exit_code == 1
    assert result.output.startswith("Error: CORPUSBOT_STATE_URL must start with postgresql:// or postgres://")
    assert result.output.count("\n") == 1 and STATE_PASSWORD not in result.output and "Traceback" not in result.output


@pytest.mark.parametrize(("value", "expected"), [("", 30.0), ("1", 1.0), ("5", 5.0), (" 2.5 ", 2.5), ("10s", 10.0)])
def test_the_index_poll_interval_is_read_from_corpusbot_index_poll(value: str, expected: float) -> None:
    assert config.settings_from_env(env(CORPUSBOT_INDEX_POLL=value)).index_poll == expected
    assert config.settings_from_env(env()).index_poll == config.DEFAULT_INDEX_POLL == 30.0


@pytest.mark.parametrize("value", ["0", "0.5", "-5", "soon", "nan", "inf", "1m", "s"])
def test_a_bad_index_poll_interval_is_refused_at_start_naming_the_variable(value: str) -> None:
    with pytest.raises(ConfigError) as caught:
        config.settings_from_env(env(CORPUSBOT_INDEX_POLL=value))
    message = str(caught.value)
    assert message.startswith("CORPUSBOT_INDEX_POLL ") and "at least 1" in message and ".env" in message
    assert "\n" not in message


def test_serve_with_a_bad_index_poll_interval_exits_with_one_line(runner, in_tmp: Path, sample_db: Path) -> None:
    result = runner.invoke(
        cli,
        ["serve", "--db", str(sample_db), "--index-from", str(in_tmp / "snapshots")],
        env={"SLACK_BOT_TOKEN": BOT_TOKEN, "SLACK_SIGNING_SECRET": "abcdef0123456789", "CORPUSBOT_INDEX_POLL": "0"},
    )
    assert result.exit_code == 1
    assert result.output.startswith("Error: CORPUSBOT_INDEX_POLL must be a number of seconds, at least 1")
    assert result.output.count("\n") == 1 and "Traceback" not in result.output


@pytest.mark.parametrize(("value", "megabytes"), [("", 128), ("0", 0), ("64", 64), (" 512 ", 512), ("256MB", 256)])
def test_the_postings_cache_size_is_read_from_corpusbot_postings_cache_mb(value: str, megabytes: int) -> None:
    assert config.postings_cache_bytes({"CORPUSBOT_POSTINGS_CACHE_MB": value}) == megabytes << 20
    assert config.DEFAULT_POSTINGS_CACHE_MB << 20 == store.DEFAULT_POSTINGS_CACHE_BYTES  # one default, two places


@pytest.mark.parametrize("value", ["-1", "1.5", "lots", "2GB", "²", "MB", str(config.MAX_POSTINGS_CACHE_MB + 1)])
def test_a_bad_postings_cache_size_is_refused_naming_the_variable_and_the_fix(value: str) -> None:
    with pytest.raises(ConfigError) as caught:
        config.postings_cache_bytes({"CORPUSBOT_POSTINGS_CACHE_MB": value})
    message = str(caught.value)
    assert message.startswith("CORPUSBOT_POSTINGS_CACHE_MB must be a whole number of megabytes") and ".env" in message


def test_ask_with_a_bad_postings_cache_size_exits_with_one_line(runner, sample_db: Path) -> None:
    result = runner.invoke(
        cli, ["ask", "--db", str(sample_db), "who is on the US delegation?"], env={"CORPUSBOT_POSTINGS_CACHE_MB": "x"}
    )
    assert result.exit_code == 1
    assert result.output.startswith("Error: CORPUSBOT_POSTINGS_CACHE_MB must be a whole number of megabytes")
    assert result.output.count("\n") == 1 and "Traceback" not in result.output


def test_a_bad_postings_cache_size_fails_before_the_sample_is_indexed(runner, tmp_path: Path) -> None:
    missing = tmp_path / "new.db"
    result = runner.invoke(cli, ["ask", "--db", str(missing), "delegation"], env={"CORPUSBOT_POSTINGS_CACHE_MB": "x"})
    assert result.exit_code == 1 and "CORPUSBOT_POSTINGS_CACHE_MB" in result.output
    assert "indexing the bundled sample" not in result.output and not missing.exists()


def test_the_service_keeps_no_postings_with_a_zero_postings_cache(sample_db: Path) -> None:
    kept = {}
    for megabytes in (0, 8):
        service = SearchService(sample_db, postings_cache_bytes=megabytes << 20)
        answer = service.ask("who is on the US delegation?")
        assert answer.hits and "Becente" in answer.hits[0].passage.text
        kept[megabytes] = len(service._postings_cache._entries)
        service.close()
    assert kept[0] == 0 and kept[8] >= 3


@pytest.mark.parametrize(
    ("name", "value", "read"),
    [
        ("CORPUSBOT_POSTINGS_CACHE_MB", "9" * 5000, config.postings_cache_bytes),
        ("CORPUSBOT_WORKERS", "9" * 5000, config.serve_workers),
        ("CORPUSBOT_RATE_LIMIT", "9" * 5000 + "/60", config.settings_from_env),
    ],
)
def test_a_number_of_more_digits_than_int_reads_is_refused_naming_the_variable(name: str, value: str, read) -> None:
    """int() refuses more than 4300 digits (sys.get_int_max_str_digits) with a ValueError, a traceback."""
    with pytest.raises(ConfigError) as caught:
        read({name: value})
    assert str(caught.value).startswith(f"{name} must")
