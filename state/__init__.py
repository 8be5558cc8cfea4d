"""Reading, locking and writing state documents. Knows nothing of planning or hosts."""
