"""The local stack: emulated AWS (moto), resources from template.yaml, gateway, pollers. Dev only."""
