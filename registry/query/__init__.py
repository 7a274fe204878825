"""Listing at scale: the filter grammar, keyset cursors, cheap counts and declared indexes.

Everything here works on any SQLAlchemy table, so record tables and CQRS read models list the
same way:

    filters.py   the filter grammar -> SQL conditions, checked against the role's field rules
    cursors.py   keyset pages and signed, opaque cursors
    counts.py    exact, estimated or no totals
    fields.py    filterable fields of a record table or of any table; the keyset order
    listing.py   one page: all of the above together
    statements.py  a page's PostgreSQL statements, built once per shape, values bound
    indexes.py   indexes declared with a model, built (concurrently on PostgreSQL) and checked
"""

from .counts import CountMode, Total, count_mode, count_rows
from .cursors import CursorCodec, KeysetOrder, Position, fetch_page, query_fingerprint
from .fields import ordering, record_fields, table_fields, visibility_of
from .filters import OPERATORS, Condition, FilterField, Visibility, compile_filters, parse_filters
from .listing import ListLimits, ListRequest, list_page

__all__ = [
    "OPERATORS",
    "Condition",
    "CountMode",
    "CursorCodec",
    "FilterField",
    "KeysetOrder",
    "ListLimits",
    "ListRequest",
    "Position",
    "Total",
    "Visibility",
    "compile_filters",
    "count_mode",
    "count_rows",
    "fetch_page",
    "list_page",
    "ordering",
    "parse_filters",
    "query_fingerprint",
    "record_fields",
    "table_fields",
    "visibility_of",
]
