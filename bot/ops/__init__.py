"""Operating the bot: Prometheus metrics (`metrics`), logs that never show a token
(`logsafe`), the per-request id carried through threads (`requestctx`) and whether
answering works lately (`health`, read by `/readyz`).

May import `corpusbot.index` and the standard library; nothing else of `corpusbot.bot`.
"""
