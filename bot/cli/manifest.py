"""``corpusbot manifest``: the Slack app manifest for the current corpus."""

from __future__ import annotations

from urllib.parse import urlsplit

import click
import yaml

from corpusbot.bot import config
from corpusbot.bot.cli.options import db_option, echo_json, json_option
from corpusbot.bot.cli.service import open_service
from corpusbot.bot.slack import manifest as slack_manifest
from corpusbot.bot.slack.links import unfurl_domains

HEADER = """\
# Slack app manifest for corpusbot, made by `corpusbot manifest` ({mode}).
# https://api.slack.com/apps -> Create New App -> From an app manifest -> paste this file.
"""


@click.command()
@click.option(
    "--mode",
    type=click.Choice(["socket", "http"]),
    default="socket",
    show_default=True,
    help="Socket Mode (no public URL), or HTTP mode (Slack posts to --url).",
)
@click.option("--url", metavar="URL", help="HTTP mode: the public https URL of /slack/events.")
@click.option(
    "--off",
    "off",
    multiple=True,
    type=click.Choice(config.SURFACES),
    help="Leave a surface out (repeatable); default: those in $CORPUSBOT_SURFACES_OFF.",
)
@db_option
@json_option
def manifest(mode: str, url: str | None, off: tuple[str, ...], db_path: str, as_json: bool) -> None:
    """Print the Slack app manifest for the current corpus (YAML, or --json).

    Every surface is declared with the scopes and events it needs: mentions,
    direct messages, /ask and /article always; the assistant panel, the
    "Ask corpusbot about this" message shortcut, link unfurls and answer
    metadata unless left out with --off (or CORPUSBOT_SURFACES_OFF). The
    unfurl domains are the (at most 5) domains with the most article URLs in
    the index; unfurls are left out when no article has a URL.

    Example: corpusbot manifest --mode http --url https://bot.example.com/slack/events
    """
    left_out = set(off) if off else set(config.settings_from_env().surfaces_off)
    if mode == "http":
        url = _request_url(url)
    elif url:
        raise click.ClickException("--url is for HTTP mode; add --mode http, or leave --url out for Socket Mode.")
    service = open_service(db_path)
    domains, skipped = unfurl_domains([article_url for _, article_url in service.article_urls()])
    if skipped and "unfurls" not in left_out:
        click.echo(
            f"Note: Slack takes at most {len(domains)} unfurl domains; links to {len(skipped)} other domain(s) "
            f"(e.g. {skipped[0]}) will not unfurl.",
            err=True,
        )
    built = slack_manifest.build("http" if mode == "http" else "socket", url, off=left_out, domains=domains)
    if as_json:
        echo_json(built)
        return
    click.echo(HEADER.format(mode="Socket Mode" if mode == "socket" else f"HTTP mode, {url}"), nl=False)
    click.echo(yaml.safe_dump(built, sort_keys=False, allow_unicode=True, width=120), nl=False)


def _request_url(url: str | None) -> str:
    fix = "Give the public address of corpusbot serve, e.g. --url https://bot.example.com/slack/events."
    if not url:
        raise click.ClickException(f"HTTP mode needs --url: where Slack sends events, commands and clicks. {fix}")
    parts = urlsplit(url.strip())
    if parts.scheme != "https" or not parts.netloc or any(char.isspace() for char in url.strip()):
        raise click.ClickException(f"--url must be an https:// URL (Slack only posts over HTTPS). {fix}")
    if len(url) > 3000:
        raise click.ClickException(f"--url is longer than Slack's 3,000 characters. {fix}")
    return url.strip()
