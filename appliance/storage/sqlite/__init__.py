"""SQLite access: one connection recipe, one writer per file, named migrations."""
