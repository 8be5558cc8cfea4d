"""How sealer shows things: plans, states, drift, progress, metrics. No use case lives here."""
