"""Students, guardians, the field catalog, change requests, problem records, import."""
