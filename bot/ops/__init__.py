"""Operating the bot: Prometheus metrics (`metrics`), logs that never show a token
(`logsafe`) and the per-request id carried through threads (`requestctx`).

May import `corpusbot.index` and the standard library; nothing else of `corpusbot.bot`.
"""
