"""Thin Celery tasks with stable names (`tasks.names`), and the producer client (`tasks.client`).

Task modules bind to the worker's app when a worker imports them; a producer imports only
`tasks.client`, which needs neither the task bodies nor a database.
"""
