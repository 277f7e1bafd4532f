import pytest

from velocity import Site, Velocity, free_port, site_config, site_with_routes


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


@pytest.fixture(params=["h1", "h2"])
def protocol(request) -> str:
    """Runs a data-plane test over HTTP/1.1 (curl, plain TCP) and over HTTP/2 (curl, TLS with ALPN h2)."""
    return request.param


@pytest.fixture
def serve(make_velocity):
    """`serve(routes, protocol, **config)`: a started server with one catch-all site running `routes` behind
    one listener for `protocol` (a key of velocity.PROTOCOLS); returns its `Site`."""

    def start(routes: list, protocol: str = "h1", **extra) -> Site:
        return site_with_routes(make_velocity(), routes, protocol, **extra)

    return start


@pytest.fixture
def upstream(tmp_path_factory):
    """`upstream(name, unix=False)`: a started `velocity.Upstream` (an HTTP/1.1 origin on a thread, on 127.0.0.1
    or on a unix socket), closed at the end of the test; `upstream.raw(answer)` makes a `velocity.RawUpstream`."""
    from velocity import RawUpstream, Upstream

    made: list = []

    def make(name: str, unix: bool = False) -> Upstream:
        made.append(Upstream(name, unix=unix, directory=str(tmp_path_factory.mktemp("sockets"))))
        return made[-1]

    def raw(answer) -> RawUpstream:
        made.append(RawUpstream(answer))
        return made[-1]

    make.raw = raw
    yield make
    for instance in made:
        instance.close()
