"""moto's DynamoDB-compatible server with one request at a time.

usage: python3 tools/moto/server.py HOST PORT

`python3 -m moto.server` serves requests on threads without isolating them:
two concurrent UpdateItems of one item can both return the same ALL_OLD
value, and two conditional PutItems (attribute_not_exists) can both succeed
(measured with moto 5.2.1: docs/design.md §6.3). DynamoDB applies every
single-item write atomically, and wxsession relies on that (same-device
logins, the access-token lease). This wrapper serves the same application
with a lock around each request, so moto behaves as DynamoDB does there;
connections are still served on threads (keep-alive works).
"""
import sys
import threading

from moto.server import DomainDispatcherApplication, create_backend_app
from werkzeug.serving import run_simple


def main() -> None:
    host, port = sys.argv[1], int(sys.argv[2])
    app = DomainDispatcherApplication(create_backend_app)
    lock = threading.Lock()

    def one_at_a_time(environ, start_response):
        with lock:
            # Consume the response inside the lock: the write is done when
            # the client gets its answer.
            return list(app(environ, start_response))

    run_simple(host, port, one_at_a_time, threaded=True)


if __name__ == "__main__":
    main()
