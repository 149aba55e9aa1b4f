"""Digests: which articles to send, how they read, and how they are delivered."""
