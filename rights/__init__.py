"""The domain: request lifecycle and deadlines, one module per right, notices, the outbox."""
