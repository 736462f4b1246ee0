"""HTTP helpers the routes and services share: rows by id (404/422), path and query parameters, keyset pages,
and readable validation errors."""
