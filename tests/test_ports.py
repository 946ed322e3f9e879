"""Ports for servers started a moment later are chosen where no outgoing connection can take
them first: below the kernel's ephemeral range (CI once saw `up` refuse a web port that the
test had been given by bind(0) and that another process took in between)."""

from __future__ import annotations

import socket

from tests.ports import ephemeral_start, free_port, is_free


def test_ports_are_below_the_ephemeral_range_free_and_never_repeated():
    start = ephemeral_start()
    ports = [free_port() for _ in range(50)]
    assert all(20000 <= port < start for port in ports)
    assert len(set(ports)) == len(ports)
    assert all(is_free(port) for port in ports)


def test_a_port_in_use_is_not_free():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        assert not is_free(s.getsockname()[1])


def test_the_range_start_is_read_from_the_kernel_setting(tmp_path):
    setting = tmp_path / "ip_local_port_range"
    setting.write_text("40000\t60999\n")
    assert ephemeral_start(setting) == 40000
    assert ephemeral_start(tmp_path / "missing") == 32768
