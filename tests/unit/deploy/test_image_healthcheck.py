"""deploy/images/healthcheck.py: the one HEALTHCHECK of the nimbus image finds the
service from PID 1's command line and asks the right port's ``/healthz``."""

import importlib.util
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

_PATH = Path(__file__).resolve().parents[3] / "deploy" / "images" / "healthcheck.py"
_spec = importlib.util.spec_from_file_location("image_healthcheck", _PATH)
healthcheck = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(healthcheck)


@pytest.mark.parametrize(("cmdline", "service"), [
    (b"python\0-m\0services.api\0", "api"),
    (b"/opt/nimbus/venv/bin/python\0-m\0services.compute_agent\0", "compute_agent"),
    (b"sh\0-c\0python -m services.api.manage migrate\0", ""),
])
def test_service_of_reads_the_module_after_dash_m(cmdline, service):
    assert healthcheck.service_of(cmdline) == service


def test_port_of_each_kind_of_service():
    env = {"NIMBUS_API_PORT": "18774", "NIMBUS_CONSOLEPROXY_PORT": "16080",
           "NIMBUS_HEALTH_PORT": "18790"}
    assert healthcheck.port_of("api", env) == 18774
    assert healthcheck.port_of("consoleproxy", env) == 16080
    assert healthcheck.port_of("scheduler", env) == 18790
    assert healthcheck.port_of("api", {}) == 8774
    assert healthcheck.port_of("consoleproxy", {}) == 6080
    assert healthcheck.port_of("volume", {}) == 0


@pytest.fixture
def healthz():
    """A server whose /healthz answers the status in ``state["status"]``."""
    state = {"status": 200}

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_response(state["status"] if self.path == "/healthz" else 404)
            self.end_headers()
            self.wfile.write(b'{"status": "ok"}' if state["status"] == 200 else b"{}")

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server.server_address[1], state
    server.shutdown()
    server.server_close()


def test_check_is_healthy_only_on_200(healthz):
    port, state = healthz
    assert healthcheck.check("scheduler", port) == (True, '{"status": "ok"}')
    state["status"] = 503
    healthy, message = healthcheck.check("scheduler", port)
    assert not healthy and "503" in message


def test_check_without_a_port_fails_and_says_why():
    healthy, message = healthcheck.check("volume", 0)
    assert not healthy and "NIMBUS_HEALTH_PORT" in message
