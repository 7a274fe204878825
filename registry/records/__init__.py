"""Records of registered models: each model's table (`table`), the service that handles the
record operations (`service`), idempotency keys (`idempotency`) and PostgreSQL's one-statement
paths (`pg_statements`).

Only the table is imported here: the catalog builds tables, and the service builds on the
catalog.
"""

from .table import RecordTable, column_type_for

__all__ = ["RecordTable", "column_type_for"]
