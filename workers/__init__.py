"""The Celery side: the app (`workers.app:app`), its configuration, per-process boot, the CLI."""
