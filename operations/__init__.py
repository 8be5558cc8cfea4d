"""Use cases: one module per thing a user asks sealer to do.

Each takes a typed request (a frozen dataclass), owns the rules of its use case (locking,
refresh, staleness, journaling) and returns a typed result. None prints: what happens on the
way goes to a Listener (events.py), which the CLI renders.
"""
