"""API clients, secret hashing, JWT access tokens, refresh tokens and scopes."""
