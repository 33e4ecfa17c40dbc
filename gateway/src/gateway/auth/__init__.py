"""Who is calling: access tokens verified locally, API keys checked by the auth service."""
