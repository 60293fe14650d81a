"""Helpers the domains' GraphQL modules share: id parsing, cursors, connections, field
lookahead."""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import graphene
from graphql import FieldNode, FragmentSpreadNode, InlineFragmentNode

from api.errors import BadUserInput, NotFound

# Database integer primary keys fit in a signed 64-bit integer; larger numbers name nothing.
MAX_DB_ID = 2**63 - 1
DEFAULT_PAGE_SIZE = 20
MAX_PAGE_SIZE = 100
MAX_IDS = 10_000
_INT_RE = re.compile(r"-?[0-9]{1,40}")


def parse_int_id(value: Any, *, field: str, noun: str = "bundle") -> int:
    """A database id from a GraphQL ``ID``: whole number text; BAD_USER_INPUT otherwise."""
    text = str(value).strip()
    if not _INT_RE.fullmatch(text):
        raise BadUserInput(
            f"{str(value)[:50]!r} is not a {noun} id (expected a whole number).", field=field
        )
    return int(text)


def parse_int_ids(values: Sequence[Any], *, field: str, noun: str = "bundle") -> list[int]:
    """Ids from a list argument: 1 to 10,000 of them, each a whole number.

    Numbers that can't be a row (zero, negative, beyond 64 bits) are reported as NOT_FOUND
    here, before they reach the database.
    """
    if len(values) == 0:
        raise BadUserInput(f"Give at least one {noun} id.", field=field)
    if len(values) > MAX_IDS:
        raise BadUserInput(
            f"At most {MAX_IDS:,} {noun} ids per request (got {len(values):,}).", field=field
        )
    ids = [parse_int_id(v, field=field, noun=noun) for v in values]
    impossible = [i for i in ids if not 1 <= i <= MAX_DB_ID]
    if impossible:
        shown = ", ".join(str(i) for i in impossible[:20])
        raise NotFound(f"No {noun} with id {shown}.", ids=impossible)
    return ids


def clean_text(value: str | None, *, field: str, max_length: int) -> str:
    """Free text from a client, stripped; too long or holding NUL characters → BAD_USER_INPUT.

    (PostgreSQL refuses NUL in text, so it is turned away here rather than failing there.)
    """
    text = (value or "").strip()
    if "\x00" in text:
        raise BadUserInput(f"'{field}' must not contain NUL characters.", field=field)
    if len(text) > max_length:
        raise BadUserInput(
            f"'{field}' is at most {max_length} characters (got {len(text)}).", field=field
        )
    return text


def check_page_size(first: int | None) -> int:
    if first is None:
        return DEFAULT_PAGE_SIZE
    if not 1 <= first <= MAX_PAGE_SIZE:
        raise BadUserInput(
            f"'first' must be between 1 and {MAX_PAGE_SIZE}, got {first}.", field="first"
        )
    return first


def encode_cursor(values: Iterable[Any]) -> str:
    raw = json.dumps([str(v) for v in values], separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str, *, size: int) -> list[str]:
    """The values in a cursor made by :func:`encode_cursor`; BAD_USER_INPUT if it is not one."""
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        values = json.loads(base64.urlsafe_b64decode(padded.encode("ascii")))
    except (ValueError, binascii.Error, UnicodeError):
        values = None
    if (
        not isinstance(values, list)
        or len(values) != size
        or not all(isinstance(v, str) for v in values)
    ):
        raise BadUserInput("'after' is not a cursor from this API.", field="after")
    return values


class PageInfo(graphene.ObjectType):
    has_next_page = graphene.Boolean(required=True)
    end_cursor = graphene.String()


def selected_fields(info) -> set[str]:
    """Names of every field selected below the current one (any depth, fragments included).

    Used to prefetch only what the query asks for.
    """
    names: set[str] = set()

    def walk(selection_set) -> None:
        if selection_set is None:
            return
        for node in selection_set.selections:
            if isinstance(node, FieldNode):
                names.add(node.name.value)
                walk(node.selection_set)
            elif isinstance(node, InlineFragmentNode):
                walk(node.selection_set)
            elif isinstance(node, FragmentSpreadNode):
                fragment = info.fragments.get(node.name.value)
                if fragment is not None:
                    walk(fragment.selection_set)

    for field_node in info.field_nodes:
        walk(field_node.selection_set)
    return names


def build_connection(
    info,
    qs,
    *,
    first: int | None,
    after: str | None,
    with_relations: Callable[[Any, set[str]], Any],
    page: Callable[..., tuple[list, bool]],
    cursor: Callable[[Any], str],
    connection: type[graphene.ObjectType],
    edge: type[graphene.ObjectType],
):
    """One page of ``qs`` as a ``connection`` (edges, pageInfo, totalCount).

    ``page(qs, first=, after=)`` orders and keyset-paginates, returning (rows, has_next);
    ``with_relations(qs, fields)`` prefetches what the query selects; ``cursor(row)`` is the
    row's ``endCursor``. totalCount is counted only when asked for.
    """
    size = check_page_size(first)
    fields = selected_fields(info)
    rows, has_next = page(with_relations(qs, fields), first=size, after=after)
    edges = [edge(cursor=cursor(row), node=row) for row in rows]
    return connection(
        edges=edges,
        page_info={
            "has_next_page": has_next,
            "end_cursor": edges[-1].cursor if edges else None,
        },
        total_count=qs.count() if "totalCount" in fields else 0,
    )
