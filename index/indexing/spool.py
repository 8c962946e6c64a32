"""``ArticleSpool``: the articles a run has read, kept in a temporary file until they are written.

A run reads the corpus, and splits and tokenizes the new articles, before it takes the write
lock; only then are the articles written. Holding all their texts in memory in between made a
1 GB JSONL file take gigabytes, so each article read is appended to the spool as a marshalled
record and only its id, path, text length and place in the file stay in memory (a few hundred
bytes an article). The file lives in memory up to ``SPOOL_MEMORY_BYTES`` and on disk beyond,
as an unnamed temporary file: nothing is left behind, even when the run is killed.
"""

from __future__ import annotations

import marshal
import tempfile
from array import array
from collections.abc import Iterable, Iterator

from corpusbot.index.models import Article

SPOOL_MEMORY_BYTES = 32 << 20  # a spool smaller than this never touches the disk
_READ_AHEAD_BYTES = 4 << 20  # consecutive records are read in blocks of about this size


class ArticleSpool:
    """Articles (with the SHA-256 of the JSONL line each was read from, or None), numbered from 0 as added."""

    def __init__(self, directory: str | None = None) -> None:
        """``directory``: where the records go once they outgrow memory (None: the system's temporary folder)."""
        # Closed by close() (the spool is a context manager): it lives as long as the run.
        self._file = tempfile.SpooledTemporaryFile(max_size=SPOOL_MEMORY_BYTES, dir=directory)  # noqa: SIM115
        self._offsets = array("q", [0])  # record n is bytes [offsets[n], offsets[n + 1]) of the file
        self._chars = array("q")  # the length of each article's text
        self.ids: list[str] = []
        self.paths: list[str | None] = []

    def __len__(self) -> int:
        return len(self.ids)

    def add(self, article: Article, line_hash: bytes | None) -> int:
        """Append ``article``; returns its number."""
        record = marshal.dumps(
            (
                article.id,
                article.title,
                article.text,
                article.url,
                article.source,
                article.published,
                article.author,
                article.path,
                line_hash,
            )
        )
        end = self._offsets[-1]
        self._file.seek(end)
        self._file.write(record)
        self._offsets.append(end + len(record))
        self._chars.append(len(article.text))
        self.ids.append(article.id)
        self.paths.append(article.path)
        return len(self.ids) - 1

    def truncate(self, count: int) -> None:
        """Forget the articles numbered ``count`` and up (those of a file that turned out unreadable)."""
        del self._offsets[count + 1 :], self._chars[count:], self.ids[count:], self.paths[count:]

    def chars(self, numbers: Iterable[int]) -> int:
        """The total length of the texts of these articles."""
        chars = self._chars
        return sum(chars[n] for n in numbers)

    def get(self, number: int) -> tuple[Article, bytes | None]:
        """One article and its line hash."""
        start, end = self._offsets[number], self._offsets[number + 1]
        self._file.seek(start)
        return _decode(self._file.read(end - start))

    def read(self, numbers: Iterable[int]) -> Iterator[tuple[int, Article, bytes | None]]:
        """``(number, article, line hash)`` of each of ``numbers`` in turn; runs of consecutive ones are read in blocks."""
        offsets = self._offsets
        block = b""
        block_start = block_end = 0
        for number in numbers:
            start, end = offsets[number], offsets[number + 1]
            if not block_start <= start or end > block_end:
                self._file.seek(start)
                block = self._file.read(max(end - start, _READ_AHEAD_BYTES))
                block_start, block_end = start, start + len(block)
            yield (number, *_decode(block[start - block_start : end - block_start]))

    def close(self) -> None:
        self._file.close()

    def __enter__(self) -> ArticleSpool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _decode(record: bytes) -> tuple[Article, bytes | None]:
    article_id, title, text, url, source, published, author, path, line_hash = marshal.loads(record)
    return Article(article_id, title, text, url, source, published, author, path), line_hash
