"""jobstream's core: job types and their registry, the job store over RQ, events and the live stream.

It knows Redis and RQ, and nothing of HTTP: the web skin (app.py, web/), the worker skin (worker.py) and
the tests call it. Importing a job module registers its types; the skins say which to load.
"""
