"""The Slack app: a thin adapter from Slack's events, commands and buttons to the
`SearchService`.

`app` builds the bolt app from `Settings`; `payloads` checks the shape of what
Slack sends and gives the listeners typed records; `listeners/` holds one module
per kind of Slack input, each with `register(app)`; `replies` decides what to answer;
`blocks` and `mrkdwn` render it; `runtime` holds what the listeners share;
`webhook` posts to `response_url`s; `watches` does `/ask watch|watches|unwatch|new` and posts what
watches find after a reindex. The assistant panel, the message shortcut and link unfurls read their payloads
through `surface_payloads` and render with `surface_blocks`; `links` matches posted links to article URLs,
`metadata` builds answers' message metadata, `manifest` the Slack app manifest.
May import `corpusbot.index`, `corpusbot.bot.config`, `corpusbot.bot.state` and `corpusbot.bot.ops`.
"""
