"""The worker skin's parts: RQ's worker, job and pool extended to publish every change, stop jobs and bound shutdown.

`worker.py` at the top is the entry point; this package is named apart from it so it does not shadow it.
"""
