"""The audit trail: every change is written to an outbox in the transaction that makes it,
and later compacted into compressed, hash-chained blocks.

- `outbox`: what an entry is and the outbox row it is written as;
- `logger`: `AuditLogger`, the front of it all (writing, history, compaction, verification,
  retention, statistics);
- `trail`: compaction, reading, verification, retention and statistics over the stored trail;
- `blocks`: the stored forms: entry bodies, their hashes, blocks and their chain hashes;
- `codecs`: how block payloads are compressed;
- `replay`: records rebuilt from their history.
"""

from .logger import AuditLogger
from .outbox import AUDIT_NS, AuditEntry, Clock, utc_now
from .replay import record_as_of

__all__ = ["AUDIT_NS", "AuditEntry", "AuditLogger", "Clock", "record_as_of", "utc_now"]
