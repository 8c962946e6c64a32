"""corpusbot's front ends over `corpusbot.index`: the `corpusbot` command line (`cli/`), the Slack app
(`slack/`), HTTP serving (`serving/`), operations (`ops/`), the bot's own state (`state/`) and
configuration (`config`, the only module that reads the environment).

`corpusbot.index` never imports anything from here (tests/test_layers.py checks it).
"""
