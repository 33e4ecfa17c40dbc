"""Child processes that parse what users upload, holding nothing worth taking (ADR 0040, 0041,
0043): their limits, their self-confinement, and how the service talks to them."""
