"""Services used by the routes: validation and job submission, kept out of the route functions."""
