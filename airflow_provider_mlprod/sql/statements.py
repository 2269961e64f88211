"""The parser barrier: user SQL must be exactly one SELECT statement, checked before anything runs.

sqlparse (already installed through ``apache-airflow-providers-common-sql``) splits the text the way the
server does, respecting quotes, comments and dollar quoting, so ``SELECT 1) AS t; COMMIT; DROP TABLE x``
is seen as three statements and refused. It does not validate the grammar, so this check is one of three
independent barriers (the driver refuses several statements with bound parameters, and the session is
read-only: see :mod:`airflow_provider_mlprod.sql.session`); it also refuses any writing keyword
(``INSERT``, ``SELECT ... INTO``, DDL, transaction control) anywhere in the statement.

Public API: :func:`check_select`.
"""

from __future__ import annotations

import sqlparse
from sqlparse import tokens as T

from airflow_provider_mlprod.exceptions import ConfigurationError

WRITING_KEYWORDS = frozenset(
    {
        "INTO", "COMMIT", "ROLLBACK", "BEGIN", "SAVEPOINT", "RELEASE", "SET", "RESET", "GRANT", "REVOKE",
        "COPY", "VACUUM", "ANALYZE", "PRAGMA", "ATTACH", "DETACH", "CALL", "EXECUTE", "DO",
        "LISTEN", "NOTIFY", "PREPARE", "DEALLOCATE", "DISCARD", "REINDEX", "CLUSTER", "REFRESH",
    }
)  # fmt: skip
"""Keywords that have no place in a read-only SELECT."""


def check_select(query: object, role: str = "query") -> str:
    """Return ``query`` without a trailing ``;`` when it is one read-only SELECT; raise otherwise.

    :param query: the user's SQL text.
    :param role: what the SQL is, for the message.
    :raises ConfigurationError: empty text, several statements, not a SELECT, or a writing keyword.
    """
    if not isinstance(query, str) or not query.strip():
        raise ConfigurationError(f"{role} {query!r} is empty; give one SELECT statement")
    statements = [
        s for s in sqlparse.parse(query) if sqlparse.format(str(s), strip_comments=True).strip(" \t\r\n;")
    ]
    if len(statements) != 1:
        raise ConfigurationError(
            f"{role} holds {len(statements)} statements; give exactly one SELECT (no ';' inside)"
        )
    statement = statements[0]
    kind = statement.get_type()
    if kind != "SELECT":
        label = "an unrecognised" if kind == "UNKNOWN" else f"a {kind}"
        raise ConfigurationError(f"{role} is {label} statement; only a SELECT (or WITH ... SELECT) is read")
    for token in statement.flatten():
        word = token.normalized.upper()
        if token.ttype in T.Keyword.DML and word != "SELECT":
            raise ConfigurationError(f"{role} contains {word}; only a read-only SELECT is run")
        if token.ttype in T.Keyword.DDL or (token.ttype in T.Keyword and word in WRITING_KEYWORDS):
            raise ConfigurationError(f"{role} contains {word}; only a read-only SELECT is run")
    return query.strip().rstrip(";").strip()
