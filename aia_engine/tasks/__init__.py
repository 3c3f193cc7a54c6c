"""Task use cases: submit, get, list, cancel, retry; events; publishing through the outbox."""
