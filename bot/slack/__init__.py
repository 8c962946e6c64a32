"""The Slack app: a thin adapter from Slack's events, commands and buttons to the
`SearchService`.

`app` builds the bolt app from `Settings`; `payloads` checks the shape of what
Slack sends and gives the listeners typed records; `listeners/` holds one module
per kind of Slack input, each with `register(app)`; `replies` decides what to answer;
`blocks` and `mrkdwn` render it; `runtime` holds what the listeners share;
`webhook` posts to `response_url`s.
May import `corpusbot.index`, `corpusbot.bot.config`, `corpusbot.bot.state` and `corpusbot.bot.ops`;
`runtime` also reads `corpusbot.bot.serving`'s worker seat and shared event table (the hand-built
multi-worker serving, due to be replaced by standard parts).
"""
