"""The ports the development stack hands its servers: never one already given out.

`free_port` picks below the kernel's ephemeral range and skips what this process handed out
before; a parent (a test running `make run`) may also have chosen ports for servers of the
child that are not listening yet, and named them in the environment, so those are skipped too.
"""

import socket

import pytest

from objectvision_devstack import processes


def _bindable(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


@pytest.fixture
def two_port_span(monkeypatch: pytest.MonkeyPatch) -> tuple[int, int]:
    """Narrow the span free_port draws from to two ports that are free now: the highest such
    pair below the kernel's ephemeral range (in a full run the suite's own servers hold some)."""
    low = processes._ephemeral_low()
    for top in range(low, low - processes._LISTEN_SPAN, -1):
        pair = (top - 2, top - 1)
        if all(_bindable(port) and port not in processes._handed_out for port in pair):
            break
    else:
        pytest.fail("no two free ports below the ephemeral range")
    monkeypatch.setattr(processes, "_ephemeral_low", lambda: top)
    monkeypatch.setattr(processes, "_LISTEN_SPAN", 2)
    return pair


def test_a_port_the_environment_names_is_never_handed_out(
    two_port_span: tuple[int, int], monkeypatch: pytest.MonkeyPatch
) -> None:
    named, other = two_port_span
    monkeypatch.setenv("GATEWAY_METRICS_PORT", str(named))
    handed = processes.free_port()
    processes._handed_out.discard(handed)
    assert handed == other


def test_without_it_in_the_environment_either_port_may_be_handed_out(
    two_port_span: tuple[int, int], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("GATEWAY_METRICS_PORT", raising=False)
    handed = {processes.free_port() for _ in range(2)}
    processes._handed_out.difference_update(handed)
    assert handed == set(two_port_span)
