"""Reading the corpus: files of each format become `Article` records.

`discover` finds the files under the given folders (and knows the bundled sample
corpus in `sample/`); `readers` turns one file's bytes into articles.
May import `corpusbot.index.errors` and `corpusbot.index.models` only.
"""
