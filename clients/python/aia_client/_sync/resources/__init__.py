"""The client's resources, one module per part of the API."""
