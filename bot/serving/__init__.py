"""Serving the Slack app over HTTP: the WSGI adapter and server (`server`), the
pre-fork supervisor for `serve --workers N` (`prefork`), how workers share
connections (`balance`) and the event ids they saw (`shared_events`).

May import `corpusbot.bot.slack`, `corpusbot.bot.config` and `corpusbot.bot.ops`.
"""
