"""Job types and their registry: `@register`, params from type hints, what a running job calls, the built-in demos."""
