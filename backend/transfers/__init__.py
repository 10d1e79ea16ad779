"""Transfers and status changes (学籍异动): a transfer between schools, suspension and
return, leaving, skipping and repeating a grade, study abroad, cancellation after death. Each
is a chain of review steps defined as data (`chains`), decided through `records.reviews`
like a correction, and applied to the record in one transaction when its last step approves.
"""
