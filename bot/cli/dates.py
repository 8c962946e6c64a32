"""``--since`` / ``--until``: a range of published dates, for the commands that filter by it."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from typing import Any, TypeVar

import click

from corpusbot.index.search.dates import parse_day

F = TypeVar("F", bound=Callable[..., Any])


class Day(click.ParamType):
    """A ``YYYY-MM-DD`` date; anything else is a usage error that shows the expected form."""

    name = "YYYY-MM-DD"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> date:
        if isinstance(value, date):
            return value
        try:
            return parse_day(str(value))
        except ValueError as error:
            self.fail(str(error), param, ctx)


def date_range_options(func: F) -> F:
    """``--since DAY`` and ``--until DAY`` (parameters ``since``, ``until``; both days included)."""
    func = click.option(
        "--until",
        type=Day(),
        default=None,
        help="Only articles published on or before this day (articles without a date are then left out).",
    )(func)
    return click.option(
        "--since",
        type=Day(),
        default=None,
        help="Only articles published on or after this day (articles without a date are then left out).",
    )(func)


def check_range(since: date | None, until: date | None) -> None:
    """A usage error when ``since`` is after ``until``."""
    if since is not None and until is not None and since > until:
        raise click.UsageError(f"--since {since} is after --until {until}; swap them or pick another range.")
