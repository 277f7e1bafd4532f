import pytest

from velocity import Velocity, free_port, site_config


@pytest.fixture
def make_velocity(tmp_path_factory):
    """Makes `Velocity` helpers (not yet started) with data dirs under pytest's tmp path, and stops every
    one of them at the end of the test, whatever happened."""
    made: list[Velocity] = []

    def make(**kwargs) -> Velocity:
        kwargs.setdefault("data_dir", str(tmp_path_factory.mktemp("velocity")))
        made.append(Velocity(**kwargs))
        return made[-1]

    yield make
    for instance in made:
        instance.stop()


@pytest.fixture
def server(make_velocity):
    """A running server with one HTTP listener answering "hello\\n"; `server.http_port` is its port."""
    instance = make_velocity()
    instance.http_port = free_port()
    return instance.start(site_config(instance.http_port))
