"""Pure domain: no boto3, no I/O. Everything here is deterministic given its inputs."""
