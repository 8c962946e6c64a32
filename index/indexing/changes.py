"""What a run changes in the index: the corpus files compared with what the index was built from.

An incremental run reads only what changed. A file whose SHA-256 is stored unchanged is not
read again. In a changed JSONL file, a line whose SHA-256 is stored for one of its articles is
that article, unchanged, and is not parsed again (the line is blanked before the rest of the
file is read, which keeps the other lines' numbers). A parsed article equal to its indexed copy
keeps that copy. Everything else the index holds of changed or removed files is stale.

An article id found in several places belongs to the first file in path order, then line order.
"""

from __future__ import annotations

import bisect
import hashlib
import json
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, NamedTuple, TypeVar

from corpusbot.index.engine import store
from corpusbot.index.indexing.summary import IndexSummary
from corpusbot.index.models import Article

if TYPE_CHECKING:  # the readers pull in bs4/yaml/charset_normalizer: imported when indexing starts
    from corpusbot.index.corpus.discover import CorpusFile
    from corpusbot.index.corpus.readers import ReadResult

T = TypeVar("T")
Progress = Callable[[Iterable[T], int], Iterator[T]]  # (items, how many) -> the same items, reporting progress


class StoredArticle(NamedTuple):
    """Where an indexed article was read from."""

    file: str
    line_hash: bytes | None  # SHA-256 of its JSONL line; None when unknown (another format, an older index)
    path: str | None  # "file:line" for a JSONL article, else the file


@dataclass
class CorpusChanges:
    """What a run must write, worked out before it takes the write lock."""

    new_articles: list[Article] = field(default_factory=list)  # to split, tokenize and insert
    stale_article_ids: set[str] = field(default_factory=set)  # indexed articles to delete
    changed_files: dict[str, tuple[str, int]] = field(default_factory=dict)  # path -> (SHA-256, size)
    # Every file the index keeps -> its article ids in order (files kept as they were included).
    file_articles: dict[str, list[str]] = field(default_factory=dict)
    line_hashes: dict[str, bytes] = field(default_factory=dict)  # article path ("file:line") -> its line's SHA-256
    # (path, line hash or None to leave it, id) of indexed articles that stay but were found at another place.
    kept_paths: list[tuple[str, bytes | None, str]] = field(default_factory=list)

    @property
    def nothing_changed(self) -> bool:
        return not self.new_articles and not self.stale_article_ids and not self.changed_files


def find_changes(
    db: store.Connection,
    corpus_files: list[CorpusFile],
    summary: IndexSummary,
    *,
    full: bool,
    replace_schema: bool,
    progress: Progress[CorpusFile] | None,
) -> CorpusChanges:
    """Compare ``corpus_files`` with the index in ``db``; what happened to each file goes into ``summary``.

    ``full``: nothing indexed is kept, every file is read. ``replace_schema``: the database holds an
    index of another schema, of which nothing is read.
    """
    comparison = _CorpusComparison(db, summary, full=full, replace_schema=replace_schema)
    for corpus_file in progress(corpus_files, len(corpus_files)) if progress else corpus_files:
        comparison.compare_file(corpus_file)
    return comparison.finish()


class _CorpusComparison:
    """The state of one comparison: what the index holds, and the changes found so far."""

    def __init__(self, db: store.Connection, summary: IndexSummary, *, full: bool, replace_schema: bool) -> None:
        self.db = db
        self.summary = summary
        self.full = full
        self.replace_schema = replace_schema
        # path -> (path, sha256, article ids as JSON) of every indexed file
        self.known: dict[str, tuple[str, str, str]] = (
            {} if replace_schema else {row[0]: row for row in db.execute("SELECT path, sha256, article_ids FROM files")}
        )
        self.stored: dict[str, StoredArticle] = {} if full else _stored_articles(db)
        self.stored_lines = _lines_by_file(self.stored)
        self.kept_lines: dict[str, tuple[str, str]] = {}  # id -> (file, path) of a stored article on an unchanged line
        self.changes = CorpusChanges()

    def compare_file(self, corpus_file: CorpusFile) -> None:
        """Keep the file's indexed articles if its content is unchanged; otherwise read what changed in it."""
        from corpusbot.index.corpus.readers import Unreadable

        summary, changes = self.summary, self.changes
        key = str(corpus_file.path)
        try:
            data = corpus_file.path.read_bytes()
        except OSError as error:
            summary.skipped.append((key, f"unreadable: {error.strerror}"))
            if key in self.known:
                changes.file_articles[key] = json.loads(self.known[key][2])
            return
        digest = hashlib.sha256(data).hexdigest()
        previous = self.known.get(key)
        if previous and previous[1] == digest and not self.full:
            summary.unchanged.append(key)
            changes.file_articles[key] = json.loads(previous[2])
            return
        lines = _plain_utf8_lines(data) if corpus_file.path.suffix.lower() == ".jsonl" else None
        hashes = [hashlib.sha256(line).digest() for line in lines] if lines is not None else None
        matched: dict[int, str] = {}  # line index -> id of the stored article read from that very line
        if hashes is not None and previous and not self.full and key in self.stored_lines:
            on_file = self.stored_lines[key]
            matched = {i: on_file[h] for i, h in enumerate(hashes) if h in on_file}
        try:
            result, matched = _read_unmatched_lines(corpus_file, data, lines, matched)
        except Unreadable as error:
            reason = str(error) + ("; the previously indexed version is kept" if previous and not self.full else "")
            summary.skipped.append((key, reason))
            if previous and not self.full:
                changes.file_articles[key] = json.loads(previous[2])
            return
        summary.warnings.extend((key, problem) for problem in result.problems)
        (summary.updated if previous else summary.added).append(key)
        changes.changed_files[key] = (digest, len(data))
        if hashes is not None:
            changes.line_hashes.update((a.path or "", hashes[_line_index(a)]) for a in result.articles)
        if matched:
            changes.file_articles[key], fresh, kept_lines = _merge_lines(key, matched, result.articles)
            self.kept_lines.update(kept_lines)
        else:
            changes.file_articles[key], fresh = [article.id for article in result.articles], result.articles
        changes.new_articles.extend(fresh)

    def finish(self) -> CorpusChanges:
        """After the last file: removed files, duplicate ids, and which indexed articles are stale."""
        changes = self.changes
        self.summary.removed = sorted(set(self.known) - set(changes.file_articles))
        owner, lost = self._give_each_id_one_file()
        changes.new_articles = _first_of_each_id([a for a in changes.new_articles if owner.get(a.id) == file_key(a)])
        if self.full:
            changes.stale_article_ids = (
                set() if self.replace_schema else {row[0] for row in self.db.execute("SELECT id FROM articles")}
            )
        else:
            self._find_stale_articles(owner)
            self._keep_unchanged_articles()
        for key in lost:
            # No recorded hash: read again next run, when the id may be its own again (as a full rebuild would).
            changes.changed_files[key] = ("", changes.changed_files[key][1] if key in changes.changed_files else 0)
        return changes

    def _give_each_id_one_file(self) -> tuple[dict[str, str], set[str]]:
        """Duplicate article ids: the first file in path order (then line order) wins.

        Returns id -> the file that has it, and the files that lost an id to another file.
        """
        owner: dict[str, str] = {}
        lost: set[str] = set()
        file_articles = self.changes.file_articles
        for key in sorted(file_articles):
            kept = []
            for article_id in file_articles[key]:
                if article_id in owner:
                    self.summary.warnings.append(
                        (key, f"duplicate article id {article_id!r}: kept the one from {owner[article_id]}")
                    )
                    lost.update([key] if owner[article_id] != key else [])
                    continue
                owner[article_id] = key
                kept.append(article_id)
            file_articles[key] = kept
        return owner, lost

    def _find_stale_articles(self, owner: dict[str, str]) -> None:
        """The indexed articles of removed or changed files, and those now owned by another file, are stale.

        Except an article found on an unchanged line of its file: its index entry stays (with its new path).
        """
        changes = self.changes
        changes.stale_article_ids = {
            article_id
            for article_id, (file, _, _) in self.stored.items()
            if file not in changes.file_articles or file in changes.changed_files or owner.get(article_id) != file
        }
        for article_id, (file, path) in self.kept_lines.items():
            if owner.get(article_id) == file:  # still that file's article: its index entry stays
                changes.stale_article_ids.discard(article_id)
                if path != self.stored[article_id].path:
                    changes.kept_paths.append((path, None, article_id))

    def _keep_unchanged_articles(self) -> None:
        """Keep the indexed copy of parsed articles of a changed file that are the same as the stored ones.

        These are lines changed without changing their article (e.g. keys reordered), and the lines of
        files whose line hashes are not stored yet. They leave ``new_articles`` and ``stale_article_ids``,
        and their (path, line hash, id) goes into ``kept_paths``.
        """
        changes = self.changes
        reread = {key for key in changes.changed_files if key in self.known}
        fresh: dict[str, Article] = {}
        for article in changes.new_articles:
            file = file_key(article)
            if file in reread and article.id in self.stored and self.stored[article.id].file == file:
                fresh[article.id] = article
        if not fresh:
            return
        unchanged: set[str] = set()
        candidates = list(fresh)
        for start in range(0, len(candidates), 500):
            chunk = candidates[start : start + 500]
            rows = self.db.execute(
                "SELECT id, title, text, url, source, published, author FROM articles "
                f"WHERE id IN ({','.join('?' * len(chunk))})",
                chunk,
            )
            for row in rows:
                article = fresh[row[0]]
                if tuple(row[1:]) == (
                    article.title,
                    article.text,
                    article.url,
                    article.source,
                    article.published,
                    article.author,
                ):
                    unchanged.add(article.id)
                    path = article.path or ""
                    changes.kept_paths.append((path, changes.line_hashes.get(path), article.id))
        changes.stale_article_ids.difference_update(unchanged)
        changes.new_articles = [a for a in changes.new_articles if a.id not in unchanged]


def file_key(article: Article) -> str:
    """The corpus file an article was read from."""
    path = article.path or ""
    # JSONL articles carry "file:line"; single-article files carry the file path.
    head, sep, tail = path.rpartition(":")
    return head if sep and tail.isdigit() else path


def _first_of_each_id(articles: list[Article]) -> list[Article]:
    seen: set[str] = set()
    unique = []
    for article in articles:
        if article.id not in seen:
            seen.add(article.id)
            unique.append(article)
    return unique


def _stored_articles(db: store.Connection) -> dict[str, StoredArticle]:
    """id -> where every indexed article was read from."""
    column = store.SOURCE_HASH_COLUMN if store.has_source_hashes(db) else "NULL"
    return {row[0]: StoredArticle(*row[1:]) for row in db.execute(f"SELECT id, file, {column}, path FROM articles")}


def _lines_by_file(stored: dict[str, StoredArticle]) -> dict[str, dict[bytes, str]]:
    """file -> {line hash: id} of the stored articles whose JSONL line hash is known."""
    found: dict[str, dict[bytes, str]] = {}
    for article_id, (file, line_hash, _) in stored.items():
        if line_hash is not None:
            found.setdefault(file, {})[line_hash] = article_id
    return found


def _plain_utf8_lines(data: bytes) -> list[bytes] | None:
    """The file's lines, if the readers decode it as plain UTF-8 (no byte-order mark, no NUL byte).

    Each line of such a file then reads the same on its own as inside the file: no UTF-8
    sequence contains a newline byte, and NFC normalisation never joins characters across a
    newline. Other encodings are decoded by guessing from the whole file: no line hashes then.
    """
    if data.startswith(b"\xef\xbb\xbf") or b"\x00" in data:
        return None
    if not data.isascii():
        try:
            data.decode("utf-8")
        except UnicodeDecodeError:
            return None
    return data.split(b"\n")


def _read_unmatched_lines(
    corpus_file: CorpusFile, data: bytes, lines: list[bytes] | None, matched: dict[int, str]
) -> tuple[ReadResult, dict[int, str]]:
    """Parse the lines of the file that no stored article was read from (every line if none was).

    The matched lines are blanked, which keeps the line numbers of the others. If what is left
    does not read (e.g. only malformed lines), the whole file is read instead, as a full rebuild
    would: then nothing counts as matched. Returns the result and the matched lines it relied on.
    """
    from corpusbot.index.corpus.readers import ReadResult, Unreadable, read_file

    if not matched or lines is None:
        return read_file(corpus_file.path, data, corpus_file.article_id), {}
    rest = b"\n".join(b"" if i in matched else line for i, line in enumerate(lines))
    if not rest.strip():
        return ReadResult(), matched
    try:
        return read_file(corpus_file.path, rest, corpus_file.article_id), matched
    except Unreadable:
        return read_file(corpus_file.path, data, corpus_file.article_id), {}


def _merge_lines(
    key: str, matched: dict[int, str], parsed: list[Article]
) -> tuple[list[str], list[Article], dict[str, tuple[str, str]]]:
    """Merge a file's matched lines (stored articles) with its parsed ones.

    Returns the file's article ids in line order, the parsed articles to index, and id -> (file, path)
    of the stored articles that stay. The first line of an id is its article (as when the whole file
    is parsed): a matched first line keeps the stored article; a parsed article whose id came earlier
    is left out.
    """
    first_line = {article_id: line for line, article_id in reversed(matched.items())}  # each id's first
    order = sorted(matched)
    ids: list[str] = []
    taken = 0
    fresh: list[Article] = []
    for article in sorted(parsed, key=_line_index):
        line = _line_index(article)
        at = bisect.bisect_left(order, line, lo=taken)
        ids.extend(matched[i] for i in order[taken:at])
        ids.append(article.id)
        taken = at
        earlier = first_line.get(article.id)
        if earlier is not None and earlier < line:
            continue  # a repeated id: the matched line above is its article
        if earlier is not None:
            del first_line[article.id]  # this line comes first: the matched one below is the repeat
        fresh.append(article)
    ids.extend(matched[i] for i in order[taken:])
    kept = {article_id: (key, f"{key}:{line + 1}") for article_id, line in first_line.items()}
    return ids, fresh, kept


def _line_index(article: Article) -> int:
    """The 0-based line of a JSONL article (its path is "file:line")."""
    return int((article.path or "").rpartition(":")[2]) - 1
