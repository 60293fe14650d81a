"""Counts in words, one way for every door (admin messages, commands, GraphQL)."""

from __future__ import annotations


def plural(count: int, noun: str) -> str:
    """ "1 job", "2 jobs": a count with its noun, plural-correct (English nouns in -s)."""
    return f"{count} {noun}{'' if count == 1 else 's'}"
