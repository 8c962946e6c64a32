"""`corpusbot manifest` and deploy/manifest.yml: valid against Slack's published manifest schemas, every surface
declared with the scopes and events it needs, and each one switchable off."""

from __future__ import annotations

import itertools
import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml
from click.testing import CliRunner

from corpusbot.bot import config
from corpusbot.bot.cli import cli
from corpusbot.bot.slack import manifest as slack_manifest
from corpusbot.index import index_corpus
from corpusbot.index.corpus.discover import BUNDLED
from tests.support import ROOT, SHARED

SCHEMAS = SHARED / "slack-manifest-schema"  # ../shared beside the repository (SOURCE.md says where from)
SCHEMA_VERSIONS = ("1.0.0", "2.0.0")
URL = "https://bot.example.com/slack/events"


def validators() -> list[jsonschema.Draft7Validator]:
    found = []
    for version in SCHEMA_VERSIONS:
        schema = json.loads((SCHEMAS / f"manifest.schema.{version}.json").read_text(encoding="utf-8"))
        jsonschema.Draft7Validator.check_schema(schema)
        found.append(jsonschema.Draft7Validator(schema))
    return found


def schema_errors(manifest: dict[str, Any]) -> list[str]:
    return [
        f"{'/'.join(map(str, error.path))}: {error.message}" for v in validators() for error in v.iter_errors(manifest)
    ]


@pytest.fixture
def sample_index(tmp_path: Path) -> Path:
    path = tmp_path / "sample.db"
    index_corpus(path, [BUNDLED])
    return path


def run(runner: CliRunner, *args: str, db: Path, env: dict[str, str] | None = None) -> Any:
    return runner.invoke(cli, ["manifest", "--db", str(db), *args], env={"CORPUSBOT_SURFACES_OFF": "", **(env or {})})


def test_the_schemas_refuse_what_slack_refuses() -> None:
    manifest = slack_manifest.build("socket", domains=["example.com"])
    assert schema_errors(manifest) == []
    for broken in (
        {**manifest, "features": {**manifest["features"], "unfurl_domains": [f"d{n}.example" for n in range(6)]}},
        {**manifest, "features": {**manifest["features"], "unfurl_domains": ["-bad.example"]}},
        {**manifest, "features": {**manifest["features"], "shortcuts": [{"name": "x" * 25, "type": "message"}]}},
        {**manifest, "display_information": {}},
    ):
        assert schema_errors(broken)


def test_deploy_manifest_is_valid_and_is_what_the_command_prints_for_the_sample(
    runner: CliRunner, sample_index: Path
) -> None:
    deployed = yaml.safe_load((ROOT / "deploy" / "manifest.yml").read_text(encoding="utf-8"))
    assert schema_errors(deployed) == []
    result = run(runner, db=sample_index)
    assert result.exit_code == 0, result.output
    assert yaml.safe_load(result.stdout) == deployed
    assert deployed["features"]["unfurl_domains"] == ["toutiao.com"]


def test_every_surface_adds_only_its_own_scopes_and_events(runner: CliRunner, sample_index: Path) -> None:
    full = json.loads(run(runner, "--json", db=sample_index).stdout)
    scopes, events = (
        set(full["oauth_config"]["scopes"]["bot"]),
        set(full["settings"]["event_subscriptions"]["bot_events"]),
    )
    assert scopes == {"app_mentions:read", "chat:write", "commands", "im:history", "assistant:write", "links:read",
                      "links:write"}  # fmt: skip
    assert events == {"app_mention", "message.im", "app_home_opened", "assistant_thread_started",
                      "assistant_thread_context_changed", "link_shared"}  # fmt: skip
    assert full["features"]["shortcuts"][0]["callback_id"] == "corpusbot_ask_message"
    assert set(slack_manifest.SCOPE_PURPOSES) == scopes  # each is explained (docs/slack.md says the same)
    no_assistant = json.loads(run(runner, "--json", "--off", "assistant", db=sample_index).stdout)
    assert "assistant_view" not in no_assistant["features"]
    assert "assistant:write" not in no_assistant["oauth_config"]["scopes"]["bot"]
    assert "assistant_thread_started" not in no_assistant["settings"]["event_subscriptions"]["bot_events"]
    no_unfurls = json.loads(run(runner, "--json", "--off", "unfurls", db=sample_index).stdout)
    assert "unfurl_domains" not in no_unfurls["features"]
    assert not {"links:read", "links:write"} & set(no_unfurls["oauth_config"]["scopes"]["bot"])
    no_shortcut = json.loads(run(runner, "--json", "--off", "shortcut", db=sample_index).stdout)
    assert "shortcuts" not in no_shortcut["features"]
    assert "commands" in no_shortcut["oauth_config"]["scopes"]["bot"]  # /ask still needs it


@pytest.mark.parametrize("mode", ["socket", "http"])
def test_every_combination_of_surfaces_in_either_mode_is_a_valid_manifest(mode: str) -> None:
    for count in range(len(config.SURFACES) + 1):
        for off in itertools.combinations(config.SURFACES, count):
            built = slack_manifest.build(mode, URL if mode == "http" else None, off=off, domains=["toutiao.com"])  # type: ignore[arg-type]
            assert schema_errors(built) == [], off


def test_http_mode_puts_the_url_everywhere_slack_posts(runner: CliRunner, sample_index: Path) -> None:
    result = run(runner, "--mode", "http", "--url", URL, "--json", db=sample_index)
    assert result.exit_code == 0, result.output
    built = json.loads(result.stdout)
    assert schema_errors(built) == []
    assert built["settings"]["socket_mode_enabled"] is False
    assert built["settings"]["event_subscriptions"]["request_url"] == URL
    assert built["settings"]["interactivity"]["request_url"] == URL
    assert {command["url"] for command in built["features"]["slash_commands"]} == {URL}
    assert URL not in json.dumps(json.loads(run(runner, "--json", db=sample_index).stdout))


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--mode", "http"], "HTTP mode needs --url"),
        (["--mode", "http", "--url", "http://bot.example.com/slack/events"], "must be an https:// URL"),
        (["--mode", "http", "--url", "https://bot.example.com/a b"], "must be an https:// URL"),
        (["--mode", "http", "--url", "https://x.example/" + "a" * 3000], "longer than"),
        (["--url", URL], "--url is for HTTP mode"),
        (["--off", "everything"], "Invalid value for '--off'"),
    ],
)
def test_mistakes_are_refused_with_the_fix_and_no_traceback(
    runner: CliRunner, sample_index: Path, args: list[str], message: str
) -> None:
    result = run(runner, *args, db=sample_index)
    assert result.exit_code != 0
    assert message in result.output
    assert "Traceback" not in result.output


def test_surfaces_off_in_the_environment_are_left_out(runner: CliRunner, sample_index: Path) -> None:
    result = run(runner, "--json", db=sample_index, env={"CORPUSBOT_SURFACES_OFF": "assistant,unfurls"})
    built = json.loads(result.stdout)
    assert "assistant_view" not in built["features"] and "unfurl_domains" not in built["features"]
    assert "shortcuts" in built["features"]
    bad = run(runner, db=sample_index, env={"CORPUSBOT_SURFACES_OFF": "panel"})
    assert bad.exit_code != 0 and "CORPUSBOT_SURFACES_OFF must be" in bad.output


def test_unfurl_domains_come_from_the_corpus_at_most_five_valid_ones(
    runner: CliRunner, tmp_path: Path, corpus_dir: Path
) -> None:
    records = [
        {
            "id": f"a{n}-{i}",
            "title": f"T {n} {i}",
            "url": f"https://www.site{n}.example/story/{i}",
            "text": f"Body {n}.",
        }
        for n in range(7)
        for i in range(n + 1)
    ]
    records.append({"id": "odd", "title": "Odd", "url": "javascript:alert(1)", "text": "Odd one."})
    (corpus_dir / "many.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    db = tmp_path / "many.db"
    index_corpus(db, [str(corpus_dir)])
    result = run(runner, "--json", db=db)
    built = json.loads(result.stdout)
    assert built["features"]["unfurl_domains"] == [f"site{n}.example" for n in (6, 5, 4, 3, 2)]
    assert schema_errors(built) == []
    assert "at most 5 unfurl domains" in result.stderr and "2 other domain(s)" in result.stderr


def test_a_corpus_without_links_has_no_unfurls(runner: CliRunner, tmp_path: Path, corpus_dir: Path) -> None:
    (corpus_dir / "plain.jsonl").write_text(json.dumps({"id": "p", "title": "P", "text": "No link."}) + "\n")
    db = tmp_path / "plain.db"
    index_corpus(db, [str(corpus_dir)])
    built = json.loads(run(runner, "--json", db=db).stdout)
    assert "unfurl_domains" not in built["features"]
    assert "links:read" not in built["oauth_config"]["scopes"]["bot"]
    assert schema_errors(built) == []
