"""Events in from the outbox relay; email, signed webhooks and live job progress out."""
