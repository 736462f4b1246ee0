"""Jobs as the API sees them: listing, cancellation, artifacts and history, live event streams, plugin
availability across workers, and the queue's part of the API lifespan."""
