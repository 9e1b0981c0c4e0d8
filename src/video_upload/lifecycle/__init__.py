"""The upload lifecycle: the rules of creating, writing, finishing, probing, expiring and
announcing uploads. No HTTP and no SQL here: persistence and storage do those."""
