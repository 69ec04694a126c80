"""Command line: parse arguments, build objects, run. No logic lives here."""
