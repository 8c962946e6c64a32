"""Serving the Slack app over HTTP: the WSGI app, its checks and waitress for one process (`server`), gunicorn for
`serve --workers N` (`workers`), and following published index snapshots (`index_follower`).

May import `corpusbot.bot.slack`, `corpusbot.bot.config` and `corpusbot.bot.ops`.
"""
