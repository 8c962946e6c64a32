"""A JSONL file read as a stream: lazily, a part at a time, with the same articles and problems as read whole."""

from __future__ import annotations

import hashlib
import io
import json
from pathlib import Path

import pytest

import corpusbot.index.corpus.readers as readers
from corpusbot.index.corpus.readers import JsonlStream, NotUtf8, Unreadable, read_file

PATH = Path("feed.jsonl")


class CountingReader(io.RawIOBase):
    """A file of ``data`` that counts the bytes handed out (through a 64 KiB buffer, like a real file)."""

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.position = 0
        self.bytes_read = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        chunk = self.data[self.position : self.position + len(buffer)]
        buffer[: len(chunk)] = chunk
        self.position += len(chunk)
        self.bytes_read += len(chunk)
        return len(chunk)


def stream_of(data: bytes, **kwargs: object) -> tuple[JsonlStream, CountingReader]:
    raw = CountingReader(data)
    return JsonlStream(PATH, io.BufferedReader(raw, 1 << 16), "doc", **kwargs), raw  # type: ignore[arg-type]


def article_line(i: int, words: int = 60) -> str:
    text = " ".join(f"word{(i * 7 + j) % 500}" for j in range(words))
    return json.dumps({"id": f"a{i}", "title": f"Report {i}", "text": text, "url": f"https://example.com/{i}"})


def test_taking_the_first_article_of_a_50_mb_file_reads_one_part_of_it() -> None:
    lines = [article_line(i) for i in range(100_000)]
    data = ("\n".join(lines) + "\n").encode()
    assert len(data) > 50_000_000
    stream, raw = stream_of(data)
    first, line_hash = next(iter(stream))
    assert first.id == "a0" and first.path == "feed.jsonl:1"
    assert line_hash == hashlib.sha256(lines[0].encode()).digest()
    # One part (and the buffer's read-ahead), not the file: reading it whole would have read all 50 MB.
    assert raw.bytes_read <= readers.JSONL_PART_BYTES + len(lines[0]) + (1 << 16)
    assert raw.bytes_read < len(data) // 10


def test_every_part_goes_through_read_file_and_is_about_the_part_size(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(readers, "JSONL_PART_BYTES", 10_000)
    sizes: list[int] = []
    original = readers.read_file

    def read_file(path: Path, data: bytes, article_id: str) -> readers.ReadResult:
        sizes.append(len(data))
        return original(path, data, article_id)

    monkeypatch.setattr(readers, "read_file", read_file)
    lines = [article_line(i) for i in range(300)]
    data = ("\n".join(lines) + "\n").encode()
    stream, _ = stream_of(data)
    assert [a.id for a, _ in stream] == [f"a{i}" for i in range(300)]
    assert len(sizes) >= len(data) // 10_000 > 10
    assert max(sizes) < 10_000 + max(len(line) for line in lines) + 1


TRICKY_LINES = [
    article_line(0),
    "",
    "   ",
    '{"id": "a1", "text": "Caf\u00e9 cre\u0300me \u2028 inside, and \u00a0 spaces"}',  # U+2028 inside a string
    '{"id": "broken", "text": ',  # malformed
    "[1, 2]",  # not an object
    '{"id": "", "text": "no id"}',
    '{"_id": 7, "text": "beir style id", "title": "  "}',
    '{"id": "s", "text": "a lone \\udce9 surrogate"}',
    '{"id": "crlf", "text": "windows line end"}\r',
    "\u00a0",  # only a no-break space: blank
    article_line(2),
    '{"id": "a3", "text": "last line without a newline"}',
]


@pytest.mark.parametrize("part_bytes", [1, 40, 4 << 20])
@pytest.mark.parametrize("bom", [False, True])
def test_the_stream_reads_what_read_file_reads_from_the_whole_file(
    part_bytes: int, bom: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(readers, "JSONL_PART_BYTES", part_bytes)
    data = (b"\xef\xbb\xbf" if bom else b"") + "\n".join(TRICKY_LINES).encode("utf-8")
    whole = read_file(PATH, data, "doc")
    stream, _ = stream_of(data)
    got = list(stream)
    assert [a for a, _ in got] == whole.articles
    assert stream.problems == whole.problems
    assert stream.unusable() is None
    assert stream.digest.hexdigest() == hashlib.sha256(data).hexdigest() and stream.size == len(data)
    lines = data.split(b"\n")
    expected_hashes = [
        None if bom else hashlib.sha256(lines[int(a.path.rpartition(":")[2]) - 1]).digest() for a in whole.articles
    ]
    assert [h for _, h in got] == expected_hashes  # a file with a byte-order mark has no line hashes


def test_known_lines_are_matched_not_parsed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(readers, "JSONL_PART_BYTES", 100)
    lines = [article_line(i) for i in range(10)]
    known = {hashlib.sha256(lines[i].encode()).digest(): f"stored{i}" for i in (0, 3, 4, 9)}
    parsed: list[str] = []
    original = readers.read_file

    def read_file(path: Path, data: bytes, article_id: str) -> readers.ReadResult:
        parsed.extend(line for line in data.decode().split("\n") if line.strip())
        return original(path, data, article_id)

    monkeypatch.setattr(readers, "read_file", read_file)
    stream, _ = stream_of(("\n".join(lines) + "\n").encode(), known_lines=known)
    articles = [a for a, _ in stream]
    assert [a.id for a in articles] == ["a1", "a2", "a5", "a6", "a7", "a8"]
    assert [a.path for a in articles][:2] == ["feed.jsonl:2", "feed.jsonl:3"]  # line numbers kept
    assert stream.matched == {0: "stored0", 3: "stored3", 4: "stored4", 9: "stored9"}
    assert sorted(json.loads(line)["id"] for line in parsed) == ["a1", "a2", "a5", "a6", "a7", "a8"]


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"\n  \n\n", "empty file"),
        ("\u00a0\n\u3000\n".encode(), "empty file"),
        (b'{"id": 1\n[2]\n{"text": "x"}\n', "no usable lines: malformed JSONL line 1"),
    ],
)
def test_a_stream_without_usable_lines_is_unreadable_as_read_file_says(data: bytes, message: str) -> None:
    with pytest.raises(Unreadable) as whole:
        read_file(PATH, data, "doc")
    stream, _ = stream_of(data)
    assert list(stream) == []
    unusable = stream.unusable()
    assert unusable is not None and str(unusable) == str(whole.value)
    assert str(unusable).startswith(message)


@pytest.mark.parametrize(
    "data",
    [
        article_line(0).encode() + b"\n" + "Caf\u00e9".encode("cp1252") + b"\n",  # not UTF-8
        article_line(0).encode() + b"\n" + b'{"id": "n", "text": "a \x00 NUL"}\n',  # a NUL byte
        "\n".join([article_line(0)] * 3).encode("utf-16"),  # UTF-16 with its byte-order mark
    ],
)
def test_files_that_are_not_plain_utf8_are_left_to_read_file(data: bytes) -> None:
    stream, _ = stream_of(data)
    with pytest.raises(NotUtf8):
        list(stream)


def test_a_byte_order_mark_then_invalid_utf8_is_unreadable_as_read_file_says(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(readers, "JSONL_PART_BYTES", 10)
    data = b"\xef\xbb\xbf" + article_line(0).encode() + b"\n" + '{"id": "x", "text": "Caf\u00e9"}'.encode("cp1252")
    with pytest.raises(Unreadable) as whole:
        read_file(PATH, data, "doc")
    stream, _ = stream_of(data)
    with pytest.raises(Unreadable) as streamed:
        list(stream)
    assert str(streamed.value) == str(whole.value)
    assert "byte-order mark" in str(streamed.value)
