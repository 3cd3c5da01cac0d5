"""The desk tables' search indexes: how a subject, and mentions of them, are found.

Each is a function of the table and columns, used in the models' `__table_args__`
(kundo_gdpr.models.desk); the migrations that made them write them out as they were.
"""

from __future__ import annotations

from sqlalchemy import Index, column, func, text


def text_search_index(table: str, column: str) -> Index:
    """A trigram index for substring search on PostgreSQL (pg_trgm, GIN).

    Finding others' items that mention the subject is `column ILIKE '%addr%'`
    over every item; with this index PostgreSQL reads only the few rows whose
    trigrams match instead of every text. SQLite has no such index: there it
    is an empty partial index (WHERE 0), present only so that both databases
    have the schema the models describe.
    """
    return Index(
        f"ix_{table}_{column}_trgm",
        column,
        postgresql_using="gin",
        postgresql_ops={column: "gin_trgm_ops"},
        sqlite_where=text("0"),
    )


def address_search_index(table: str, address: str, key: str) -> Index:
    """A trigram index of the address column's values that are not simply their key.

    A plain address, already in its normalised form (most values), is found by
    its key's B-tree index; only the others (a display name, several
    recipients, another case, an encoded `@`, no key yet) need a substring
    search. Indexing every value made the domain's trigrams, shared by
    millions of addresses (`example.com`), cost ~100 ms per column and search
    at 10M items (benchmarks/desk10m.py); the rest is a small index.
    Empty on SQLite, as `text_search_index`.
    """
    return Index(
        f"ix_{table}_{address}_other_trgm",
        func.nullif(column(address), column(key)).label(address),
        postgresql_using="gin",
        postgresql_ops={address: "gin_trgm_ops"},
        sqlite_where=text("0"),
    )


def key_indexes(table: str, *pairs: tuple[str, str], item: bool = False) -> tuple[Index, ...]:
    """For each (address column, key column): the key's index, and a partial
    index of the rows whose key is still to be set (what catch_up reads).

    An `item` table's (a subject's items are found by key and channel) key
    index holds the channel and the id too, so the lookup reads the index
    alone (migration 0015): at a million items a subject's few thousand rows
    lie on as many table pages, which cost 70-90 ms to visit on a busy machine.
    """
    indexes: list[Index] = []
    for address, key in pairs:
        pending = text(f"{key} IS NULL AND {address} IS NOT NULL")
        indexes += [
            Index(f"ix_{table}_{key}_channel", key, "channel_id", postgresql_include=["id"])
            if item else Index(f"ix_{table}_{key}", key),
            Index(f"ix_{table}_{key}_pending", "id", sqlite_where=pending,
                  postgresql_where=pending),
        ]
    return tuple(indexes)
