"""One row per message to send; a dispatcher sends, retries with backoff and gives up."""
