"""The `sealer` command line: parses flags, calls the layers, renders. No logic hides here."""
