import pytest

from velocity import Velocity, free_port, site_config


@pytest.fixture
def server():
    """A running server with one HTTP listener answering "hello\\n"; `server.http_port` is its port."""
    instance = Velocity()
    instance.http_port = free_port()
    instance.start(site_config(instance.http_port))
    yield instance
    instance.stop()
