"""Types of the compiled per-token loop of ``Tokenizer.tokens_of`` (``_token_scan.c``); tokenizer.py is its only
caller."""

from collections.abc import Callable, Container
from typing import TypeVar

_T = TypeVar("_T")

def tokens_of(
    text: str,
    token_terms: dict[str, tuple[str, ...]],
    token_words: dict[str, tuple[tuple[str, int, int], ...]],
    wanted: Container[str],
    make: Callable[[str, int, int], _T],
    starts: bytes | None = None,
    /,
) -> tuple[list[_T], list[tuple[int, str]]]:
    """``make(term, start, end)`` for each word of ``text`` whose term is in ``wanted``, in text order, and the
    whitespace-separated tokens (``str.split()``'s) a cache does not hold, as ``(start, token)`` in text order.

    Only the tokens with a term in ``wanted`` (by ``token_terms``) have their words looked at: ``token_words`` gives
    them as ``(term, start, end)`` in the token, and ``start``/``end`` are made offsets in ``text``. ``starts`` (128
    bytes, by ASCII character): an ASCII token none of whose possible word starts ``c`` has ``starts[c]`` set is
    left without a look-up, cached or not (the caller knows it has no wanted term). Raises TypeError when ``text``
    is not a str, a cache not a dict, a cached value not a tuple (of terms, of word tuples), or ``starts`` not 128
    bytes.
    """
