"""The officers' review console: server-rendered pages over the platform's own REST API."""
