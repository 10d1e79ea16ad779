"""Everything a parent or teacher does from the phone."""
