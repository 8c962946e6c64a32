"""The deploy files agree with the code: manifest, .env.example, Docker image."""

from __future__ import annotations

import re

import yaml

from tests.support import ROOT


def test_manifest_declares_what_the_bot_handles_with_minimal_scopes() -> None:
    manifest = yaml.safe_load((ROOT / "deploy" / "manifest.yml").read_text(encoding="utf-8"))
    assert {c["command"] for c in manifest["features"]["slash_commands"]} == {"/ask", "/article"}
    assert set(manifest["settings"]["event_subscriptions"]["bot_events"]) == {
        "app_mention",
        "message.im",
        "app_home_opened",
        "assistant_thread_started",  # the assistant panel, shortcut and unfurls: tests/bot/cli/test_manifest.py
        "assistant_thread_context_changed",
        "link_shared",
    }
    assert set(manifest["oauth_config"]["scopes"]["bot"]) == {
        "app_mentions:read",
        "chat:write",
        "commands",
        "im:history",
        "assistant:write",
        "links:read",
        "links:write",
    }
    assert manifest["settings"]["interactivity"]["is_enabled"] is True
    assert manifest["settings"]["socket_mode_enabled"] is True
    assert manifest["features"]["app_home"]["home_tab_enabled"] is True


def test_env_example_documents_every_variable_the_config_reads() -> None:
    source = (ROOT / "bot" / "config.py").read_text(encoding="utf-8")
    read = set(re.findall(r'"((?:SLACK|CORPUSBOT)_[A-Z_]+)"', source))
    documented = set(
        re.findall(r"^((?:SLACK|CORPUSBOT)_[A-Z_]+)=", (ROOT / ".env.example").read_text(encoding="utf-8"), re.M)
    )
    assert {"SLACK_BOT_TOKEN", "SLACK_APP_TOKEN", "SLACK_SIGNING_SECRET", "SLACK_API_URL", "CORPUSBOT_DB"} <= read
    assert read <= documented


def test_docker_image_runs_as_a_non_root_user_with_the_database_on_a_volume() -> None:
    dockerfile = (ROOT / "deploy" / "Dockerfile").read_text(encoding="utf-8")
    users = re.findall(r"^USER (\S+)", dockerfile, re.M)
    assert users and users[-1] not in ("root", "0")
    assert 'VOLUME ["/data"]' in dockerfile and "CORPUSBOT_DB=/data/" in dockerfile
