"""The proof of a run: the hash-chained log and its blobs, the sealed outcome, receipt and summary,
the signing of receipts, one reader of run folders, and the verifier."""
