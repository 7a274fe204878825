"""Batch imports: jobs in the database, chunks written in bulk with their audit entries."""

from .bulk import BulkValidator, Validated, write_batch
from .jobs import ImportOptions, ImportService, SourceDescription
from .tables import import_chunks, import_jobs, import_rejects

__all__ = [
    "BulkValidator",
    "ImportOptions",
    "ImportService",
    "SourceDescription",
    "Validated",
    "import_chunks",
    "import_jobs",
    "import_rejects",
    "write_batch",
]
