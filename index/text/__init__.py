"""Text processing shared by indexing and searching: the one tokenizer, British to
American spellings, and the passage splitter.

Used for the corpus and for questions alike, so both are cut into the same terms.
May import `corpusbot.index.models` only.
"""
