"""AIA Engine: staged agent workflows compiled to Celery canvases, durable in PostgreSQL."""

__version__ = "0.1.0"
