"""The compiled part of the build; everything else is declared in pyproject.toml.

index/engine/_bm25_kernel.c (installed as corpusbot.index.engine._bm25_kernel) is the BM25 scoring loop and the second stage's
article scores and near-duplicate pairs. It is optional: without a C compiler the
install still succeeds and index/engine/bm25.py scores with numpy (same results, slower).
-O3 vectorises the id checks; -ffp-contract=off keeps its floating-point operations exactly those of the numpy path.

index/text/_token_scan.c (corpusbot.index.text._token_scan) is the per-token loop of the tokenizer's ``tokens_of``
(the highlighted words of an answer). Optional too: without it index/text/tokenizer.py runs the same loop in Python.
"""

from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension(
            "corpusbot.index.engine._bm25_kernel",
            sources=["index/engine/_bm25_kernel.c"],
            extra_compile_args=["-O3", "-ffp-contract=off"],
            optional=True,
        ),
        Extension(
            "corpusbot.index.text._token_scan",
            sources=["index/text/_token_scan.c"],
            extra_compile_args=["-O3"],
            optional=True,
        ),
    ]
)
