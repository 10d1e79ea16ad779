"""Accounts, roles, the organisation tree that scopes are made of, tokens and the audit log."""
