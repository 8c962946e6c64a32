"""Read corpus files (.txt, .md, .html/.htm, .jsonl) into :class:`Article` records.

Each reader gets the file's bytes and returns the articles it found plus the
problems it met (a file-level problem means the file is skipped; a line-level
one in JSONL skips just that line).

A UTF-8 JSONL file can also be read as a stream (:class:`JsonlStream`): a part
of whole lines at a time goes through :func:`read_file` (as :class:`JsonlLines`),
so memory holds one part, not the file, however large it is.
"""

from __future__ import annotations

import codecs
import hashlib
import json
import re
import unicodedata
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO

from corpusbot.index.models import Article

if TYPE_CHECKING:
    from bs4 import BeautifulSoup, Tag

# bs4, yaml and charset_normalizer are imported where they are needed: most
# processes that import this module (the bot, `corpusbot ask`) never parse files.

SUPPORTED_SUFFIXES = (".txt", ".md", ".markdown", ".html", ".htm", ".jsonl")
TITLE_MAX_CHARS = 80

_ORIGINAL_ARTICLE = re.compile(r"^\s*Original article:\s*(\S+)\s*$", re.IGNORECASE)
_DISCLAIMER = re.compile(r"^\s*Disclaimer\s*:", re.IGNORECASE)
_FRONT_MATTER = re.compile(r"\A---[ \t]*\r?\n(.*?)\r?\n(?:---|\.\.\.)[ \t]*(?:\r?\n|\Z)", re.DOTALL)
_MD_HEADING = re.compile(r"^\s{0,3}#\s+(.+?)\s*#*\s*$", re.MULTILINE)
_SENTENCE = re.compile(r"^(.+?[.!?])(?=\s|$)", re.DOTALL)
_SLUG_JUNK = re.compile(r"[^a-z0-9]+")


class Unreadable(Exception):
    """The whole file cannot be used; the message is the reason shown to the user."""


@dataclass
class ReadResult:
    articles: list[Article] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)


def read_file(path: Path, data: bytes, article_id: str) -> ReadResult:
    """Parse one file. ``article_id`` is used by single-article formats.

    Every failure is an :class:`Unreadable` with the reason: one bad file must
    never abort a whole reindex (a parser's own error included).
    """
    try:
        return _read(path, data, article_id)
    except Unreadable:
        raise
    except Exception as error:  # any parser failure skips just this file
        raise Unreadable(f"could not be parsed ({type(error).__name__}: {str(error)[:200]})") from None


def _read(path: Path, data: bytes, article_id: str) -> ReadResult:
    if isinstance(data, JsonlLines):  # a part of a JSONL file, read as that part of the whole
        return _read_jsonl(path, unicodedata.normalize("NFC", data.decode("utf-8")), data.first_line, whole_file=False)
    suffix = path.suffix.lower()
    if not data.strip():
        raise Unreadable("empty file")
    # NFC: the tokenizer's word pattern does not join a letter with a separate combining accent
    # ("cafe\u0301"), so decomposed text would not match questions typed the usual (composed) way.
    text = unicodedata.normalize("NFC", decode(data, html=suffix in (".html", ".htm")))
    if not text.strip():  # e.g. only a byte-order mark
        raise Unreadable("empty file")
    if suffix == ".jsonl":
        return _read_jsonl(path, text)
    if suffix == ".txt":
        article = _read_text(text, article_id)
    elif suffix in (".md", ".markdown"):
        article = _read_markdown(text, article_id)
    elif suffix in (".html", ".htm"):
        article = _read_html(text, article_id)
    else:
        raise Unreadable(f"unsupported type {suffix or '(no extension)'}")
    if not article.text.strip():
        raise Unreadable("no article text")
    return ReadResult([_with_path(article, path)])


_BOMS = (
    (b"\xef\xbb\xbf", "utf-8"),
    (b"\xff\xfe\x00\x00", "utf-32-le"),
    (b"\x00\x00\xfe\xff", "utf-32-be"),
    (b"\xff\xfe", "utf-16-le"),
    (b"\xfe\xff", "utf-16-be"),
)
_DECLARED_CHARSET = re.compile(
    rb"""<meta[^>]*?charset\s*=\s*["']?\s*([A-Za-z0-9_.:-]+)|<\?xml[^>]*?encoding\s*=\s*["']([A-Za-z0-9_.:-]+)""",
    re.IGNORECASE,
)
# As browsers do (WHATWG), a declared Latin-1 or ASCII page is read as its superset Windows-1252.
_WINDOWS_1252_LABELS = frozenset({"iso8859_1", "ascii", "cp1252"})
_MOSTLY_ASCII = 0.3  # at most this share of non-ASCII bytes among the non-blank ones
_HIGH_BYTES = bytes(range(0x80, 0x100))


def decode(data: bytes, *, html: bool = False) -> str:
    """The file's text, decoded with the first that applies.

    A byte-order mark (UTF-8/16/32); UTF-8; the charset an HTML file declares
    (``<meta charset>``); UTF-16 without a BOM (a NUL in every other byte);
    Windows-1252 for mostly-ASCII text (Western European text, for which
    detection often picks a wrong single-byte code page); the charset
    charset-normalizer detects. Anything else is skipped with the reason.
    """
    for bom, codec in _BOMS:
        if data.startswith(bom):
            try:
                return data[len(bom) :].decode(codec)
            except UnicodeDecodeError as error:
                raise Unreadable(f"undecodable: starts with a {codec} byte-order mark but {error.reason}") from None
    utf16 = _utf16_without_bom(data)
    if utf16 is not None:
        return utf16
    if b"\x00" in data[:8192]:
        raise Unreadable("binary file (contains NUL bytes)")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        pass
    candidates: list[str | None] = [_declared_charset(data)] if html else []
    if _mostly_ascii(data):
        candidates.append("cp1252")
    for charset in candidates:
        if charset:
            try:
                return data.decode(charset)
            except UnicodeDecodeError:
                continue
    from charset_normalizer import from_bytes

    best = from_bytes(data[: 1 << 20]).best()
    if best is None or best.encoding is None:
        raise Unreadable("undecodable: not UTF-8 and no character set could be detected")
    try:
        return data.decode(best.encoding)
    except (UnicodeDecodeError, LookupError) as error:
        raise Unreadable(f"undecodable as {best.encoding}: {error}") from None


def _declared_charset(data: bytes) -> str | None:
    found = _DECLARED_CHARSET.search(data[:4096])
    if not found:
        return None
    label = (found.group(1) or found.group(2)).decode("ascii").lower()
    try:
        name = codecs.lookup(label).name.replace("-", "_")
    except LookupError:
        return None
    return "cp1252" if name in _WINDOWS_1252_LABELS else name


def _utf16_without_bom(data: bytes) -> str | None:
    """Mostly-ASCII UTF-16 text without a BOM: NUL bytes at every odd (LE) or even (BE) position."""
    head = data[:4096]
    if len(head) < 8 or len(head) % 2:
        return None
    even_nuls = head[0::2].count(0) / (len(head) // 2)
    odd_nuls = head[1::2].count(0) / (len(head) // 2)
    if odd_nuls > 0.9 and even_nuls < 0.1:
        codec = "utf-16-le"
    elif even_nuls > 0.9 and odd_nuls < 0.1:
        codec = "utf-16-be"
    else:
        return None
    try:
        text = data.decode(codec)
    except UnicodeDecodeError:
        return None
    head_text = text[:2048]
    printable = sum(1 for ch in head_text if ch.isprintable() or ch.isspace())
    return text if printable >= 0.95 * len(head_text) else None


def _mostly_ascii(data: bytes) -> bool:
    sample = data[: 1 << 20]
    high = len(sample) - len(sample.translate(None, _HIGH_BYTES))
    blank = len(sample) - len(sample.translate(None, b" \t\r\n"))
    return high <= _MOSTLY_ASCII * max(len(sample) - blank, 1)


def slug(value: str) -> str:
    """A short id users can type: lowercase letters, digits and dashes."""
    cleaned = _SLUG_JUNK.sub("-", value.lower()).strip("-")
    return cleaned[:60].rstrip("-") or "article"


def derive_title(text: str) -> str:
    """The first sentence of ``text``, cut at a word boundary if long."""
    first = text.strip().split("\n", 1)[0].strip()
    match = _SENTENCE.match(first)
    sentence = (match.group(1) if match else first).strip()
    if len(sentence) <= TITLE_MAX_CHARS:
        return sentence.rstrip(".")
    cut = sentence[:TITLE_MAX_CHARS].rsplit(" ", 1)[0].rstrip(",;:-")
    return cut + "…"


def _with_path(article: Article, path: Path) -> Article:
    return Article(**{**article.__dict__, "path": str(path)})


def _read_text(text: str, article_id: str) -> Article:
    url = None
    kept: list[str] = []
    for line in text.splitlines():
        found = _ORIGINAL_ARTICLE.match(line)
        if found and url is None:
            url = found.group(1)
            continue
        if _DISCLAIMER.match(line):
            continue
        kept.append(line.rstrip())
    body = "\n".join(kept).strip()
    return Article(id=article_id, title=_title_line(body) or derive_title(body), text=body, url=_http_url(url))


def _title_line(body: str) -> str | None:
    """A first line that reads like a headline (short, no full stop) followed by more text."""
    first, _, rest = body.partition("\n")
    first = first.strip()
    if rest.strip() and 0 < len(first.split()) <= 15 and not first.endswith((".", "!", "?", ",", ";", ":")):
        return first
    return None


def _read_markdown(text: str, article_id: str) -> Article:
    meta: dict[str, object] = {}
    body = text
    found = _FRONT_MATTER.match(text)
    if found:
        import yaml

        try:
            loaded = yaml.safe_load(found.group(1))
        except yaml.YAMLError as error:
            raise Unreadable(f"invalid YAML front matter: {str(error).splitlines()[0]}") from None
        if isinstance(loaded, dict):
            meta = {str(key).lower(): value for key, value in loaded.items()}
        body = text[found.end() :]
    body = body.strip()
    heading = _MD_HEADING.search(body)
    title = _string(meta.get("title")) or (heading.group(1).strip() if heading else None) or derive_title(body)
    return Article(
        id=article_id,
        title=title,
        text=body,
        url=_http_url(_string(meta.get("url"))),
        source=_string(meta.get("source")),
        published=_string(meta.get("published") or meta.get("date")),
        author=_string(meta.get("author")),
    )


_DROP_TAGS = (
    "script",
    "style",
    "noscript",
    "nav",
    "header",
    "footer",
    "aside",
    "form",
    "iframe",
    "svg",
    "template",
    "button",
)
_BLOCK_TAGS = (
    "p", "div", "section", "article", "main", "h1", "h2", "h3", "h4", "h5", "h6", "li", "ul", "ol",
    "blockquote", "pre", "table", "tr", "td", "th", "figure", "figcaption", "dd", "dt", "hr",
)  # fmt: skip


def read_html(text: str, article_id: str) -> Article:
    """An HTML page's article, as a ``.html`` file gives it (for pages fetched by ``corpusbot.index.sources``)."""
    return _read_html(text, article_id)


def _read_html(text: str, article_id: str) -> Article:
    """The page's main text (trafilatura, precision mode; our extractor when it finds none) and metadata.

    Metadata comes from the page's own tags first (``og:title`` then ``<title>``, Open Graph, ``<meta
    name=author>``, ``rel=canonical``), then from what trafilatura found.
    """
    from bs4 import BeautifulSoup

    soup = BeautifulSoup(text, "html.parser")
    title_tag = soup.find("title")
    title = _meta(soup, ("og:title",)) or (title_tag.get_text(" ", strip=True) if title_tag else "")
    url = _meta(soup, ("og:url",)) or _link(soup, "canonical")
    published = _meta(soup, ("article:published_time", "date", "pubdate", "dc.date", "dc.date.issued"))
    source = _meta(soup, ("og:site_name",))
    author = _meta(soup, ("author", "article:author", "dc.creator"))
    found = _main_text(text)
    if found is not None:
        body, metadata = found
        title = title or metadata.get("title") or ""
        url = url or metadata.get("url")
        published = published or metadata.get("date")
        source = source or metadata.get("sitename")
        author = author or metadata.get("author")
    else:
        body = _hand_written_main_text(soup)
    if not title:
        h1 = soup.find("h1")
        title = h1.get_text(" ", strip=True) if h1 else derive_title(body)
    return Article(
        id=article_id, title=title, text=body, url=_http_url(url), source=source, published=published, author=author
    )


_MAIN_TEXT_BLOCKS = frozenset({"head", "p", "item", "quote", "code", "row", "list", "table", "div"})
_CLUTTER_XPATHS = [
    "//nav",
    "//aside",
    "//form",
    "//button",
    "//dialog",
    "//footer",
    "//header[not(ancestor::article)]",
    "//*[@role='navigation' or @role='banner' or @role='contentinfo' or @role='complementary' or @role='dialog']",
]


def _main_text(html: str) -> tuple[str, dict[str, str]] | None:
    """trafilatura's main text (paragraphs separated by blank lines) and its metadata; None if it finds no text."""
    import trafilatura

    document = trafilatura.bare_extraction(
        html,
        favor_precision=True,
        with_metadata=True,
        include_comments=False,
        include_tables=True,
        prune_xpath=_CLUTTER_XPATHS,  # also keeps its fallback extractors from returning a lone menu
    )
    body = getattr(document, "body", None)
    if document is None or body is None:
        return None
    parts: list[str] = []
    stack: list[tuple[object, bool]] = [(body, False)]
    while stack:  # an explicit stack, as in _block_text: no recursion on deep markup
        node, closing = stack.pop()
        tag = getattr(node, "tag", "")
        if closing:
            parts.append("\n\n" if tag in _MAIN_TEXT_BLOCKS else " " if tag == "cell" else "")
            parts.append(getattr(node, "tail", None) or "")
            continue
        if tag == "lb":
            parts.append("\n")
            parts.append(getattr(node, "tail", None) or "")
            continue
        if tag in _MAIN_TEXT_BLOCKS:
            parts.append("\n\n")
        parts.append(getattr(node, "text", None) or "")
        stack.append((node, True))
        stack.extend((child, False) for child in reversed(list(node)))  # type: ignore[call-overload]
    lines = [" ".join(line.split()) for line in "".join(parts).split("\n")]
    text = re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip()
    if not text:
        return None
    fields = ("title", "url", "date", "sitename", "author")
    metadata = {name: value for name in fields if isinstance(value := getattr(document, name, None), str) and value}
    return text, metadata


def _hand_written_main_text(soup: BeautifulSoup) -> str:
    """Our own extractor, for pages where trafilatura finds no main text (short or unusual pages)."""
    for tag in soup.find_all(_DROP_TAGS):
        if not tag.decomposed:  # (a tag inside one already dropped is gone with it)
            tag.decompose()
    root = soup.find("article") or soup.find("main") or soup.body or soup
    lines = [" ".join(line.split()) for line in _block_text(root).split("\n")]
    return re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip()


def _block_text(root: Tag) -> str:
    """The text under ``root``, with a paragraph break around block elements and a line break for <br>.

    One pass over the tree with an explicit stack: inserting break strings into
    the tree instead (bs4 ``insert_before``) costs time proportional to each
    tag's subtree, quadratic on deeply nested markup, and recursion would
    overflow on it.
    """
    from bs4 import CData, NavigableString, Tag

    parts: list[str] = []
    stack: list[tuple[object, bool]] = [(root, False)]
    while stack:
        node, closing = stack.pop()
        if closing:
            parts.append("\n\n")
        elif isinstance(node, Tag):
            if node.name == "br":
                parts.append("\n")
                continue
            if node.name in _BLOCK_TAGS:
                parts.append("\n\n")
                stack.append((node, True))
            stack.extend((child, False) for child in reversed(node.contents))
        elif type(node) in (NavigableString, CData):  # not comments, doctypes, processing instructions
            parts.append(str(node))
    return "".join(parts)


def _meta(soup: BeautifulSoup, names: tuple[str, ...]) -> str | None:
    for name in names:
        tag = soup.find("meta", attrs={"property": name}) or soup.find("meta", attrs={"name": name})
        if tag and tag.get("content"):
            return str(tag["content"]).strip()[:500] or None
    return None


def _link(soup: BeautifulSoup, rel: str) -> str | None:
    tag = soup.find("link", rel=rel)
    return str(tag["href"]).strip() if tag and tag.get("href") else None


def _read_jsonl(path: Path, text: str, first_line: int = 1, *, whole_file: bool = True) -> ReadResult:
    """The articles of JSONL ``text``, whose first line is line ``first_line`` of the file.

    ``whole_file``: the text is the whole file, which is unreadable if no line is usable.
    """
    result = ReadResult()
    # JSON Lines are separated by \n only: str.splitlines would also split at U+2028 or U+0085,
    # which JSON allows unescaped inside strings.
    for number, line in enumerate(text.split("\n"), start=first_line):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as error:
            result.problems.append(f"malformed JSONL line {number}: {error.msg}")
            continue
        except RecursionError:
            result.problems.append(f"malformed JSONL line {number}: nested too deeply")
            continue
        if not isinstance(record, dict):
            result.problems.append(f"malformed JSONL line {number}: expected an object")
            continue
        if "\\u" in line and _has_lone_surrogate(record):
            # "\udce9" alone is valid JSON but no character: SQLite (UTF-8) could not store it.
            record = {key: _replace_lone_surrogates(value) for key, value in record.items()}
            result.problems.append(f"JSONL line {number}: a \\u escape that is not a character was replaced by U+FFFD")
        raw_id = record.get("id", record.get("_id"))
        body = record.get("text")
        if raw_id is None or str(raw_id).strip() == "":
            result.problems.append(f"JSONL line {number}: no 'id' (or '_id')")
            continue
        if not isinstance(body, str) or not body.strip():
            result.problems.append(f"JSONL line {number}: no 'text'")
            continue
        body = body.strip()
        result.articles.append(
            Article(
                id=str(raw_id).strip(),
                title=_string(record.get("title")) or derive_title(body),
                text=body,
                url=_http_url(_string(record.get("url"))),
                source=_string(record.get("source")),
                published=_string(record.get("published")),
                author=_string(record.get("author")),
                path=f"{path}:{number}",
            )
        )
    if whole_file and not result.articles and result.problems:
        raise _no_usable_lines(result.problems)
    return result


def _no_usable_lines(problems: list[str]) -> Unreadable:
    return Unreadable("no usable lines: " + "; ".join(problems[:3]))


JSONL_PART_BYTES = 4 << 20  # JsonlStream hands read_file parts of about this many bytes
_UTF8_BOM = b"\xef\xbb\xbf"


class JsonlLines(bytes):
    """Whole consecutive lines of a UTF-8 JSONL file, joined by newlines; the first is line ``first_line``.

    :func:`read_file` reads them as that part of the file: their lines are numbered from
    ``first_line``, and a part without a usable line is no error (whether the whole file is
    empty or unusable is for the reader of all its parts to say, :class:`JsonlStream`).
    """

    first_line: int

    def __new__(cls, data: bytes, first_line: int = 1) -> JsonlLines:
        lines = super().__new__(cls, data)
        lines.first_line = first_line
        return lines


class NotUtf8(Exception):
    """A file read by :class:`JsonlStream` turned out not to be UTF-8 (or plain UTF-8 with a NUL byte).

    Its encoding is then guessed from the whole file, as :func:`read_file` does with the file's bytes.
    """


class JsonlStream:
    """The articles of a UTF-8 JSONL file, read lazily: one part of whole lines at a time.

    Iterating yields ``(article, line hash)``, parsing the next part of about
    ``JSONL_PART_BYTES`` (through :func:`read_file`, as :class:`JsonlLines`) only when
    the articles of the previous one have been taken. The result equals reading the
    whole file with :func:`read_file`: every line of a UTF-8 file reads the same on its
    own as inside the file (no UTF-8 sequence contains a newline byte, and NFC
    normalisation never joins characters across a newline).

    A *plain* UTF-8 file (no byte-order mark, no NUL byte) gets the SHA-256 of each line
    (without its newline) as line hash, else None. A line whose hash is in
    ``known_lines`` (hash -> the id of the article read from it before) is not parsed:
    it reads as a blank line, and ``matched`` records its 0-based index -> that id.

    Raises :class:`NotUtf8` when the file turns out not to be UTF-8, or to hold a NUL byte
    without a byte-order mark (``read_file`` would then guess its encoding from all of it);
    :class:`Unreadable` as ``read_file`` would for a UTF-8 file with a byte-order mark that
    is not valid UTF-8 after it, or a line the parser fails on. A part whose lines are all
    blank or matched is not handed to ``read_file``. After the iteration, ``digest`` and
    ``size`` describe the bytes read, ``problems`` lists the line-level problems, and
    :meth:`unusable` says whether the lines read make a usable file.
    """

    def __init__(
        self,
        path: Path,
        file: BinaryIO,
        article_id: str,
        *,
        known_lines: Mapping[bytes, str] | None = None,
        on_part: Callable[[int], None] | None = None,
    ) -> None:
        self.path = path
        self.file = file
        self.article_id = article_id
        self.known_lines = known_lines or {}
        self.on_part = on_part  # called with the number of bytes read so far, after each part's articles
        self.digest = hashlib.sha256()
        self.size = 0
        self.problems: list[str] = []
        self.matched: dict[int, str] = {}
        self.articles = 0
        self.nonblank = False  # some line that is not matched holds more than whitespace bytes
        self.bom = False

    def __iter__(self) -> Iterator[tuple[Article, bytes | None]]:
        part: list[bytes] = []
        part_bytes = 0
        part_first = 1
        part_nonblank = False
        hashes: dict[int, bytes] = {}  # line number -> hash, for the part's lines that are parsed
        sha256 = hashlib.sha256
        for number, raw in enumerate(self.file, start=1):
            self.digest.update(raw)
            self.size += len(raw)
            if number == 1 and raw.startswith(_UTF8_BOM):
                self.bom = True
                raw = raw[len(_UTF8_BOM) :]
            self._check_utf8(raw)
            line = raw[:-1] if raw.endswith(b"\n") else raw
            if not self.bom:
                line_hash = sha256(line).digest()
                known = self.known_lines.get(line_hash)
                if known is not None:
                    self.matched[number - 1] = known
                    line = b""
                elif line.strip():
                    hashes[number] = line_hash
            if line and line.strip():
                self.nonblank = part_nonblank = True
            part.append(line)
            part_bytes += len(line) + 1
            if part_bytes >= JSONL_PART_BYTES:
                if part_nonblank:
                    yield from self._parse(part, part_first, hashes)
                if self.on_part is not None:  # once the part's articles have been taken
                    self.on_part(self.size)
                part, part_bytes, part_first, part_nonblank, hashes = [], 0, number + 1, False, {}
        if part_nonblank:
            yield from self._parse(part, part_first, hashes)

    def _check_utf8(self, raw: bytes) -> None:
        """A line (with its newline: an error's reason is then the one decoding the whole file gives)."""
        if not self.bom and b"\x00" in raw:
            raise NotUtf8(f"{self.path}: NUL byte")
        if raw.isascii():
            return
        try:
            raw.decode("utf-8")
        except UnicodeDecodeError as error:
            if self.bom:
                raise Unreadable(f"undecodable: starts with a utf-8 byte-order mark but {error.reason}") from None
            raise NotUtf8(f"{self.path}: not UTF-8") from None

    def _parse(
        self, part: list[bytes], first_line: int, hashes: dict[int, bytes]
    ) -> Iterator[tuple[Article, bytes | None]]:
        result = read_file(self.path, JsonlLines(b"\n".join(part), first_line), self.article_id)
        self.problems.extend(result.problems)
        for article in result.articles:
            self.articles += 1
            yield article, hashes.get(int((article.path or "").rpartition(":")[2]))

    def unusable(self) -> Unreadable | None:
        """What ``read_file`` would raise for the lines read (the matched ones blank), or None if they make a usable file."""
        if self.articles:
            return None
        return _no_usable_lines(self.problems) if self.problems else Unreadable("empty file")


_LONE_SURROGATE = re.compile("[\ud800-\udfff]")


def _has_lone_surrogate(record: dict) -> bool:
    return any(isinstance(v, str) and _LONE_SURROGATE.search(v) for v in record.values())


def _replace_lone_surrogates(value: object) -> object:
    return _LONE_SURROGATE.sub("\ufffd", value) if isinstance(value, str) else value


def _string(value: object) -> str | None:
    if value is None:
        return None
    text = str(value).strip()
    return text or None


def _http_url(url: str | None) -> str | None:
    """Only http(s) URLs are kept: they become links in Slack."""
    if url and re.match(r"^https?://[^\s<>|]+$", url, re.IGNORECASE):
        return url
    return None
