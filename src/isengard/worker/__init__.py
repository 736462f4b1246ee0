"""The worker process: claims jobs from Redis, runs plugins, records what they produce."""
