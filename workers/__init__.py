"""Celery workers: thin task functions that take ids, open a session and call `aia_engine`."""
