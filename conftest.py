"""Shared by every suite: real infrastructure fixtures, started once per test session."""

# pytest's importlib mode registers the folder `gateway/` as a namespace package named
# `gateway` when it collects gateway/tests; importing the installed package first wins.
import gateway  # noqa: F401

pytest_plugins = ["objectvision_devstack.pytest_plugin"]
