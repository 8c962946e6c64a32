"""What a run changes in the index: the corpus files compared with what the index was built from.

An incremental run reads only what changed. A file whose SHA-256 is stored unchanged is not
read again. In a changed JSONL file, a line whose SHA-256 is stored for one of its articles is
that article, unchanged, and is not parsed again (the line is blanked before the rest of the
file is read, which keeps the other lines' numbers). A parsed article equal to its indexed copy
keeps that copy. Everything else the index holds of changed or removed files is stale.

A UTF-8 JSONL file is read as a stream of lines (``readers.JsonlStream``), hashed as it is
read; the articles read go to the run's ``ArticleSpool`` (a temporary file), so memory holds
a part of the file at a time, not the file. A file of the same size as its indexed version is
hashed first and read only if it changed. Other files are read whole.

An article id found in several places belongs to the first file in path order, then line order.
"""

from __future__ import annotations

import bisect
import hashlib
import json
import os
import sqlite3
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, BinaryIO, NamedTuple, TypeVar

from corpusbot.index.engine import store
from corpusbot.index.errors import CorpusbotError
from corpusbot.index.indexing.progress import IndexProgress, ProgressCallback
from corpusbot.index.indexing.spool import ArticleSpool
from corpusbot.index.indexing.summary import IndexSummary
from corpusbot.index.models import Article

if TYPE_CHECKING:  # the readers pull in bs4/yaml/charset_normalizer: imported when indexing starts
    from corpusbot.index.corpus.discover import CorpusFile
    from corpusbot.index.sources.refresh import FetchedArticle

T = TypeVar("T")
Progress = Callable[[Iterable[T], int], Iterator[T]]  # (items, how many) -> the same items, reporting progress
_HASH_BLOCK = 1 << 20


class StoredArticle(NamedTuple):
    """Where an indexed article was read from."""

    file: str
    line_hash: bytes | None  # SHA-256 of its JSONL line; None when unknown (another format, an older index)
    path: str | None  # "file:line" for a JSONL article, else the file


@dataclass
class CorpusChanges:
    """What a run must write, worked out before it takes the write lock."""

    spool: ArticleSpool  # every article read this run, with the SHA-256 of its JSONL line (or None)
    new_articles: list[int] = field(default_factory=list)  # to split, tokenize and insert: numbers in ``spool``
    stale_article_ids: set[str] = field(default_factory=set)  # indexed articles to delete
    changed_files: dict[str, tuple[str, int]] = field(default_factory=dict)  # path -> (SHA-256, size)
    # Every file the index keeps -> its article ids in order (files kept as they were included).
    file_articles: dict[str, list[str]] = field(default_factory=dict)
    # (path, line hash or None to leave it, id) of indexed articles that stay but were found at another place.
    kept_paths: list[tuple[str, bytes | None, str]] = field(default_factory=list)

    @property
    def nothing_changed(self) -> bool:
        return not self.new_articles and not self.stale_article_ids and not self.changed_files


class _FileRead(NamedTuple):
    """A changed file, read (its articles are in the spool)."""

    digest: str  # SHA-256 of the file's bytes, hex
    size: int
    problems: list[str]
    parsed: list[tuple[int, str, int]]  # (0-based line, id, spool number) of each article parsed, in file order
    matched: dict[int, str]  # line index -> id of the stored article read from that very line (not parsed)


def find_changes(
    db: store.Connection,
    corpus_files: list[CorpusFile],
    summary: IndexSummary,
    spool: ArticleSpool,
    *,
    full: bool,
    replace_schema: bool,
    progress: Progress[CorpusFile] | None = None,
    on_progress: ProgressCallback | None = None,
    fetched: Iterable[FetchedArticle] = (),
) -> CorpusChanges:
    """Compare ``corpus_files`` with the index in ``db``; what happened to each file goes into ``summary``.

    ``fetched``: the articles of web sources (``corpusbot.index.sources``), each one "file" keyed by
    its canonical URL; one without content keeps its indexed copy.

    ``full``: nothing indexed is kept, every file is read. ``replace_schema``: the database holds an
    index of another schema, of which nothing is read. The articles read go into ``spool``.
    ``progress`` wraps the files as they are compared; ``on_progress`` hears of the bytes read (of all
    the files' sizes) as reading goes on.
    """
    comparison = _CorpusComparison(db, summary, spool, full=full, replace_schema=replace_schema)
    reading = _ReadingProgress(corpus_files, spool, on_progress) if on_progress else None
    for corpus_file in progress(corpus_files, len(corpus_files)) if progress else corpus_files:
        if reading:
            reading.start_file()
        comparison.compare_file(corpus_file, reading.in_file if reading else None)
    if reading:
        reading.report(final=True)
    for item in fetched:
        comparison.compare_fetched(item)
    return comparison.finish()


class _ReadingProgress:
    """Reports the bytes read so far, of the total size of the corpus files (as found when reading began)."""

    def __init__(self, corpus_files: list[CorpusFile], spool: ArticleSpool, progress: ProgressCallback) -> None:
        self.sizes = [_size(corpus_file) for corpus_file in corpus_files]
        self.total = sum(self.sizes)
        self.spool = spool
        self.progress = progress
        self.files = 0  # files started
        self.before = 0  # bytes of the files before the current one

    def start_file(self) -> None:
        if self.files:
            self.before += self.sizes[self.files - 1]
            self.report()
        self.files += 1

    def in_file(self, read: int) -> None:
        self.report(min(read, self.sizes[self.files - 1]))

    def report(self, read: int = 0, *, final: bool = False) -> None:
        done = self.total if final else self.before + read
        self.progress(
            IndexProgress(
                "reading", done, self.total, "bytes", articles=len(self.spool), files=(self.files, len(self.sizes))
            )
        )


def _size(corpus_file: CorpusFile) -> int:
    try:
        return corpus_file.path.stat().st_size
    except OSError:
        return 0


class _CorpusComparison:
    """The state of one comparison: what the index holds, and the changes found so far."""

    def __init__(
        self, db: store.Connection, summary: IndexSummary, spool: ArticleSpool, *, full: bool, replace_schema: bool
    ) -> None:
        self.db = db
        self.summary = summary
        self.full = full
        self.replace_schema = replace_schema
        # path -> (path, sha256, size, article ids as JSON) of every indexed file
        self.known: dict[str, tuple[str, str, int | None, str]] = (
            {}
            if replace_schema
            else {row[0]: row for row in db.execute("SELECT path, sha256, size, article_ids FROM files")}
        )
        self.stored: dict[str, StoredArticle] = {} if full else _stored_articles(db)
        self.stored_lines = _lines_by_file(self.stored)
        self.kept_lines: dict[str, tuple[str, str]] = {}  # id -> (file, path) of a stored article on an unchanged line
        self.spool = spool
        self.changes = CorpusChanges(spool)

    def compare_file(self, corpus_file: CorpusFile, on_bytes: Callable[[int], None] | None = None) -> None:
        """Keep the file's indexed articles if its content is unchanged; otherwise read what changed in it.

        ``on_bytes`` hears how many of the file's bytes have been read, now and then.
        """
        from corpusbot.index.corpus.readers import Unreadable

        summary, changes = self.summary, self.changes
        key = str(corpus_file.path)
        previous = self.known.get(key)
        first = len(self.spool)
        try:
            found = self._read(corpus_file, previous, on_bytes)
        except OSError as error:
            self.spool.truncate(first)
            summary.skipped.append((key, f"unreadable: {error.strerror}"))
            if key in self.known:
                changes.file_articles[key] = json.loads(self.known[key][3])
            return
        except Unreadable as error:
            self.spool.truncate(first)
            reason = str(error) + ("; the previously indexed version is kept" if previous and not self.full else "")
            summary.skipped.append((key, reason))
            if previous and not self.full:
                changes.file_articles[key] = json.loads(previous[3])
            return
        if found is None:
            assert previous is not None
            summary.unchanged.append(key)
            changes.file_articles[key] = json.loads(previous[3])
            return
        summary.warnings.extend((key, problem) for problem in found.problems)
        (summary.updated if previous else summary.added).append(key)
        changes.changed_files[key] = (found.digest, found.size)
        if found.matched:
            changes.file_articles[key], fresh, kept_lines = _merge_lines(key, found.matched, found.parsed)
            self.kept_lines.update(kept_lines)
        else:
            changes.file_articles[key] = [article_id for _, article_id, _ in found.parsed]
            fresh = [number for _, _, number in found.parsed]
        changes.new_articles.extend(fresh)

    def compare_fetched(self, fetched: FetchedArticle) -> None:
        """A web source's article: new content is compared by digest; none keeps the indexed copy (if any).

        A full rebuild reads a kept article back from the index, as it reads a file again.
        """
        summary, changes = self.summary, self.changes
        key = fetched.key
        if key in changes.file_articles:  # (the same key from the files: the file wins)
            return
        previous = self.known.get(key)
        article = fetched.article
        if article is None and self.replace_schema:
            self._carry_over(key)
            return
        if article is None:
            if previous is None:
                return
            stored_ids = json.loads(previous[3])
            if self.full:
                articles = self._stored_copies(stored_ids, key)
                if not articles:
                    return
                changes.changed_files[key] = (previous[1], previous[2] or 0)
                changes.new_articles.extend(self.spool.add(a, None) for a in articles)
                stored_ids = [a.id for a in articles]
            summary.unchanged.append(key)
            changes.file_articles[key] = stored_ids
            return
        digest = fetched_digest(article)
        changes.file_articles[key] = [article.id]
        if previous and previous[1] == digest and not self.full:
            summary.unchanged.append(key)
            return
        (summary.updated if previous else summary.added).append(key)
        changes.changed_files[key] = (digest, len(article.text.encode("utf-8")))
        changes.new_articles.append(self.spool.add(Article(**{**article.__dict__, "path": key}), None))

    def _carry_over(self, key: str) -> None:
        """A web article kept (its source failed, or it left its feed) while an index of another schema is
        replaced: it cannot be fetched again, so its copy is read from the old tables, or the run is refused.
        """
        try:
            articles = _old_schema_copies(self.db, key)
        except _OldIndexUnreadable as error:
            failing = "; ".join(f"{url} ({reason})" for url, reason in self.summary.failed_sources) or "none"
            raise CorpusbotError(
                f"Replacing the index of another schema would lose web articles that cannot be fetched again now "
                f"(e.g. {key}), and they could not be read from the old index ({error}). Nothing was written. "
                f"Failing sources: {failing}. Run `corpusbot index --full` again when they answer, or remove "
                "them with `corpusbot sources remove URL` to give up their articles."
            ) from None
        if not articles:
            return  # the old index did not hold it either: nothing to lose
        self.changes.changed_files[key] = (
            fetched_digest(articles[0]) if len(articles) == 1 else "",  # a digest the next fetch can match
            sum(len(a.text.encode("utf-8")) for a in articles),
        )
        self.changes.new_articles.extend(self.spool.add(a, None) for a in articles)
        self.changes.file_articles[key] = [a.id for a in articles]
        self.summary.unchanged.append(key)

    def _stored_copies(self, article_ids: list[str], key: str) -> list[Article]:
        """The indexed articles ``article_ids`` (of web source ``key``), read back for a full rebuild."""
        if self.replace_schema or not article_ids:
            return []
        marks = ",".join("?" * len(article_ids))
        rows = self.db.execute(
            f"SELECT id, title, text, url, source, published, author FROM articles WHERE id IN ({marks})", article_ids
        ).fetchall()
        return [
            Article(id=i, title=t, text=x, url=u, source=s, published=p, author=a, path=key)
            for i, t, x, u, s, p, a in rows
        ]

    def _read(
        self,
        corpus_file: CorpusFile,
        previous: tuple[str, str, int | None, str] | None,
        on_bytes: Callable[[int], None] | None,
    ) -> _FileRead | None:
        """The file's articles (into the spool), or None if its content is the indexed one.

        Raises ``OSError`` when the file cannot be read, ``Unreadable`` when it is no usable corpus file.
        """
        if corpus_file.path.suffix.lower() != ".jsonl":
            return self._read_whole(corpus_file, corpus_file.path.read_bytes(), previous)
        with corpus_file.path.open("rb") as file:
            if previous and previous[1] and not self.full and previous[2] == os.fstat(file.fileno()).st_size:
                # Maybe unchanged: hash it before reading any of it (most files of an incremental run are).
                if _file_digest(file, on_bytes) == previous[1]:
                    return None
                file.seek(0)
            return self._read_jsonl(corpus_file, file, previous, on_bytes)

    def _read_whole(
        self, corpus_file: CorpusFile, data: bytes, previous: tuple[str, str, int | None, str] | None
    ) -> _FileRead | None:
        """A file read as one ``bytes``: no line hashes, nothing matched."""
        from corpusbot.index.corpus.readers import read_file

        digest = hashlib.sha256(data).hexdigest()
        if previous and previous[1] == digest and not self.full:
            return None
        result = read_file(corpus_file.path, data, corpus_file.article_id)
        jsonl = corpus_file.path.suffix.lower() == ".jsonl"
        parsed = [(_line_index(a) if jsonl else 0, a.id, self.spool.add(a, None)) for a in result.articles]
        return _FileRead(digest, len(data), result.problems, parsed, {})

    def _read_jsonl(
        self,
        corpus_file: CorpusFile,
        file: BinaryIO,
        previous: tuple[str, str, int | None, str] | None,
        on_bytes: Callable[[int], None] | None,
    ) -> _FileRead | None:
        """A changed JSONL file, streamed if it is UTF-8; the lines of stored articles are matched, not parsed.

        If what is left besides the matched lines does not read (e.g. only malformed lines), the whole
        file is read instead, as a full rebuild would: then nothing counts as matched.
        """
        from corpusbot.index.corpus.readers import JsonlStream, NotUtf8

        key = str(corpus_file.path)
        known = self.stored_lines.get(key) if previous and not self.full else None
        first = len(self.spool)
        try:
            stream = JsonlStream(corpus_file.path, file, corpus_file.article_id, known_lines=known, on_part=on_bytes)
            parsed = [(_line_index(a), a.id, self.spool.add(a, line_hash)) for a, line_hash in stream]
            if previous and previous[1] == stream.digest.hexdigest() and not self.full:
                self.spool.truncate(first)  # unchanged after all (its size was not known)
                return None
            if stream.matched and not stream.nonblank:
                return _FileRead(stream.digest.hexdigest(), stream.size, stream.problems, [], stream.matched)
            unusable = stream.unusable()
            if unusable is not None and stream.matched:
                file.seek(0)
                stream = JsonlStream(corpus_file.path, file, corpus_file.article_id, on_part=on_bytes)
                parsed = [(_line_index(a), a.id, self.spool.add(a, line_hash)) for a, line_hash in stream]
                unusable = stream.unusable()
            if unusable is not None:
                raise unusable
            return _FileRead(stream.digest.hexdigest(), stream.size, stream.problems, parsed, stream.matched)
        except NotUtf8:
            # Not UTF-8 after all: its encoding is guessed from all of it, as before streaming existed.
            self.spool.truncate(first)
            file.seek(0)
            return self._read_whole(corpus_file, file.read(), previous)

    def finish(self) -> CorpusChanges:
        """After the last file: removed files, duplicate ids, and which indexed articles are stale."""
        changes = self.changes
        self.summary.removed = sorted(set(self.known) - set(changes.file_articles))
        owner, lost = self._give_each_id_one_file()
        ids, paths = self.spool.ids, self.spool.paths
        changes.new_articles = _first_of_each_id(
            [n for n in changes.new_articles if owner.get(ids[n]) == file_of(paths[n])], ids
        )
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
        fresh: dict[str, int] = {}  # id -> spool number
        ids, paths = self.spool.ids, self.spool.paths
        for number in changes.new_articles:
            file, article_id = file_of(paths[number]), ids[number]
            if file in reread and article_id in self.stored and self.stored[article_id].file == file:
                fresh[article_id] = number
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
            for row in rows.fetchall():
                article, line_hash = self.spool.get(fresh[row[0]])
                if tuple(row[1:]) == (
                    article.title,
                    article.text,
                    article.url,
                    article.source,
                    article.published,
                    article.author,
                ):
                    unchanged.add(article.id)
                    changes.kept_paths.append((article.path or "", line_hash, article.id))
        changes.stale_article_ids.difference_update(unchanged)
        changes.new_articles = [n for n in changes.new_articles if ids[n] not in unchanged]


class _OldIndexUnreadable(Exception):
    pass


def _old_schema_copies(db: store.Connection, key: str) -> list[Article]:
    """The articles of web source ``key`` in an index of another schema, read with the columns it has.

    Raises ``_OldIndexUnreadable`` when its ``files`` or ``articles`` table cannot give them whole.
    """
    try:
        row = db.execute("SELECT article_ids FROM files WHERE path = ?", (key,)).fetchone()
        if row is None:
            return []
        article_ids = [str(i) for i in json.loads(row[0])]
        columns = {info[1] for info in db.execute("PRAGMA table_info(articles)")}
        if not {"id", "title", "text"} <= columns:
            raise _OldIndexUnreadable("its articles table has no id, title and text")
        wanted = ("id", "title", "text", "url", "source", "published", "author")
        select = ", ".join(name if name in columns else "NULL" for name in wanted)
        marks = ",".join("?" * len(article_ids))
        found = db.execute(f"SELECT {select} FROM articles WHERE id IN ({marks})", article_ids).fetchall()
    except (sqlite3.Error, ValueError, TypeError) as error:
        raise _OldIndexUnreadable(str(error)) from None
    if len(found) != len(article_ids):
        raise _OldIndexUnreadable(f"{len(article_ids) - len(found)} of its articles are missing")
    return [
        Article(id=str(i), title=t or "", text=x or "", url=u, source=s, published=p, author=a, path=key)
        for i, t, x, u, s, p, a in found
    ]


def fetched_digest(article: Article) -> str:
    """SHA-256 of what is indexed of a web article: its text and metadata (a changed title is a change)."""
    fields = [article.id, article.title, article.text, article.url, article.source, article.published, article.author]
    return hashlib.sha256(json.dumps(fields, ensure_ascii=False).encode("utf-8")).hexdigest()


def file_key(article: Article) -> str:
    """The corpus file an article was read from."""
    return file_of(article.path)


def file_of(path: str | None) -> str:
    """The corpus file of an article's path: JSONL articles carry "file:line", single-article files the file."""
    path = path or ""
    head, sep, tail = path.rpartition(":")
    return head if sep and tail.isdigit() else path


def _first_of_each_id(numbers: list[int], ids: list[str]) -> list[int]:
    """The spool numbers of the first article of each id."""
    seen: set[str] = set()
    unique = []
    for number in numbers:
        if ids[number] not in seen:
            seen.add(ids[number])
            unique.append(number)
    return unique


def _file_digest(file: BinaryIO, on_bytes: Callable[[int], None] | None = None) -> str:
    """SHA-256 of the rest of ``file``, hex, read a block at a time (``on_bytes`` hears how many were read)."""
    digest = hashlib.sha256()
    read = 0
    while block := file.read(_HASH_BLOCK):
        digest.update(block)
        read += len(block)
        if on_bytes is not None and read % (_HASH_BLOCK * 16) == 0:
            on_bytes(read)
    return digest.hexdigest()


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


def _merge_lines(
    key: str, matched: dict[int, str], parsed: list[tuple[int, str, int]]
) -> tuple[list[str], list[int], dict[str, tuple[str, str]]]:
    """Merge a file's matched lines (stored articles) with its parsed ones, ``(line, id, spool number)``.

    Returns the file's article ids in line order, the spool numbers of the parsed articles to index,
    and id -> (file, path) of the stored articles that stay. The first line of an id is its article
    (as when the whole file is parsed): a matched first line keeps the stored article; a parsed
    article whose id came earlier is left out.
    """
    first_line = {article_id: line for line, article_id in reversed(matched.items())}  # each id's first
    order = sorted(matched)
    ids: list[str] = []
    taken = 0
    fresh: list[int] = []
    for line, article_id, number in sorted(parsed):
        at = bisect.bisect_left(order, line, lo=taken)
        ids.extend(matched[i] for i in order[taken:at])
        ids.append(article_id)
        taken = at
        earlier = first_line.get(article_id)
        if earlier is not None and earlier < line:
            continue  # a repeated id: the matched line above is its article
        if earlier is not None:
            del first_line[article_id]  # this line comes first: the matched one below is the repeat
        fresh.append(number)
    ids.extend(matched[i] for i in order[taken:])
    kept = {article_id: (key, f"{key}:{line + 1}") for article_id, line in first_line.items()}
    return ids, fresh, kept


def _line_index(article: Article) -> int:
    """The 0-based line of a JSONL article (its path is "file:line")."""
    return int((article.path or "").rpartition(":")[2]) - 1
