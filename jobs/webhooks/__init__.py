"""Webhooks: job events sent to HTTP endpoints, signed as Standard Webhooks; kept, fanned out, delivered."""
