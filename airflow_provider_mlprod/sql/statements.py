"""The parser barrier: user SQL must be exactly one SELECT statement, checked before anything runs.

sqlparse (already installed through ``apache-airflow-providers-common-sql``) splits the text the way the
server does, respecting quotes, comments and dollar quoting, so ``SELECT 1) AS t; COMMIT; DROP TABLE x``
is seen as three statements and refused. It does not validate the grammar, so this check is one of three
independent barriers (the driver refuses several statements with bound parameters, and the session is
read-only: see :mod:`airflow_provider_mlprod.sql.session`); it also refuses any writing keyword
(``INSERT``, ``SELECT ... INTO``, DDL, transaction control) anywhere in the statement.

Where sqlparse and the database would split the text differently, the text is refused before it is split:
sqlparse reads a backslash before a quote as an escape in every quoted text (MySQL's rule), while
PostgreSQL's and SQLite's standard strings and quoted names keep the backslash and end at the quote, so
``SELECT '\\' AS a; COMMIT; BEGIN READ WRITE; DROP TABLE t; --'`` looks like one SELECT holding one string
to sqlparse and is four statements to PostgreSQL (which runs them all in one simple query, where
``BEGIN READ WRITE`` leaves any read-only default). Likewise ``# `` starts a comment for sqlparse (MySQL)
but is an operator in PostgreSQL (``SELECT 1 # 1; DROP TABLE t``). A backslash directly before a quote,
and a ``#`` comment, are therefore refused: write a quote inside text as ``''``, or bind the value. So is
a MySQL/MariaDB executable comment (``/*! INTO OUTFILE '/tmp/x' */``), whose text those servers run.

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
    for escaped_quote in ("\\'", '\\"'):
        if escaped_quote in query:
            raise ConfigurationError(
                f"{role} holds {escaped_quote} (a backslash before a quote), which databases read "
                "differently (an escape in MySQL, a plain character in PostgreSQL and SQLite), so where its "
                "quoted text ends is ambiguous; write a quote inside text as '' or pass the value as a "
                "bound parameter"
            )
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
        if token.ttype in T.Comment and token.value.startswith(("/*!", "/*M!")):
            raise ConfigurationError(
                f"{role} holds {token.value[:40]!r}: MySQL and MariaDB run the text of a '/*!' comment as "
                "SQL, unseen by this check; use -- or plain /* */ comments"
            )
        if token.ttype in T.Comment and token.value.startswith("#"):
            raise ConfigurationError(
                f"{role} holds a '#' comment ({token.value.strip()!r}); '#' starts a comment only in MySQL "
                "and is an operator elsewhere, so the rest of the line may be SQL: use -- or /* */ comments"
            )
        word = token.normalized.upper()
        if token.ttype in T.Keyword.DML and word != "SELECT":
            raise ConfigurationError(f"{role} contains {word}; only a read-only SELECT is run")
        if token.ttype in T.Keyword.DDL or (token.ttype in T.Keyword and word in WRITING_KEYWORDS):
            raise ConfigurationError(f"{role} contains {word}; only a read-only SELECT is run")
    return query.strip().rstrip(";").strip()
