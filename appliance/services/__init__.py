"""The services by domain: each folder owns a group of nouns; controllers and the CLI call these."""
