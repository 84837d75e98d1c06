"""The domain, by area: lifecycle (any request), access, contest and erasure (the rights),
recipients, holdings, delivery and ledger below them, reports (read models) above; jobs and
catalogue wire them together. The allowed arrows are import-linter contracts in pyproject.toml."""
