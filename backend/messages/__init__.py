"""Conversations: a parent asks the school; the school answers, or passes it up to its authority."""
