"""Adapters from the use cases' ports to AWS (SQS, SNS) and to the clock."""
