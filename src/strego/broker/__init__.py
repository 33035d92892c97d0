"""Brokers: the protocols the client and worker need, and the Redis implementation."""
