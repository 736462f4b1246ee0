"""The Redis Streams job queue and the live event streams."""
