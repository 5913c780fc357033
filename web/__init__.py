"""The web skin's parts: the routes with their OpenAPI description, and the one JSON error shape."""
