"""Email: rendering from templates, header safety, and the transports that send it."""
