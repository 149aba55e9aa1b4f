"""SQLite storage: the schema, its migrations, and every SQL statement atlaswatch runs."""

from storage.database import StorageError, open_database, transaction

__all__ = ["StorageError", "open_database", "transaction"]
