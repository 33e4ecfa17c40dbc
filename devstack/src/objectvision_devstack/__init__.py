"""The whole system on one machine, for `make run` and for the test suite."""
