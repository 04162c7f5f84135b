"""HTTP API: Powertools REST resolver, routers per resource, one place mapping errors to HTTP."""
