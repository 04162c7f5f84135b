"""Use cases: load, decide with the domain, commit one change, then dispatch what it produced."""
