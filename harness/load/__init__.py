"""Load runs: the query catalog driven by Locust users on psycopg 3 (``harness load``).

``locustfile.py`` here is usable on its own (``locust -f <this folder>/locustfile.py``); ``runner`` wraps it
headless and bounded, ``report`` writes load.json, load.md and the figure. Nothing in this package imports
psycopg at import time: gevent has to patch the standard library first.
"""
