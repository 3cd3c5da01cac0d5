"""Our own records: keyed subject hashes, the erasure ledger, signed proofs,
retention and minimisation. What we keep proves what was done and names
nobody in clear once it need not."""
