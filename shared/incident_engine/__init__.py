"""Incident Engine: incidents, escalation policies and the timer protocol.

Layers, from the inside out: ``domain`` (pure rules, no AWS), ``usecases`` (orchestration
through ports), ``store`` (PynamoDB) and ``adapters`` (SQS, SNS, clock), ``api`` (HTTP routers).
"""
