"""A Qdrant server that fails: the real qdrant-client against a loopback server answering with
Qdrant's error shape. Transient failures (429, 5xx, no answer) become ``IndexUnavailable``, which
the task runners retry; a request the server refuses for good stays an error."""

import pytest
from qdrant_client.http.exceptions import UnexpectedResponse

from connectors.index.base import IndexUnavailable
from connectors.index.qdrant_index import QdrantIndex
from standins._loopback import LoopbackServer, Reply, Request
from workers.ingest_tasks import is_transient


# the client checks the server's version from a thread of its own; with the port closed it warns
pytestmark = pytest.mark.filterwarnings("ignore:Failed to obtain server version:UserWarning")


def _index(url: str) -> QdrantIndex:
    return QdrantIndex.server(url=url, dim=4)


class FailingQdrant(LoopbackServer):
    def __init__(self, status: int, headers: dict | None = None):
        super().__init__()
        self.status, self.headers, self.requests = status, headers or {}, []

    def handle(self, request: Request) -> Reply:
        if request.method == "GET" and request.path == "/":     # the client's version check
            return Reply(200, {"title": "qdrant - vector search engine", "version": "1.15.0"})
        self.requests.append(request)
        return Reply(self.status, {"status": {"error": f"scripted {self.status}"}, "time": 0.0}, self.headers)


@pytest.mark.parametrize("status,headers", [(503, {}), (502, {}), (429, {"Retry-After": "1"})])
def test_a_server_answering_429_or_5xx_is_unavailable_and_retried(status, headers):
    with FailingQdrant(status, headers) as server:
        index = _index(server.origin)
        with pytest.raises(IndexUnavailable) as caught:
            index.delete_documents("handbook", ["a.md"])
        index.close()
    assert server.requests, "the real client must have called the server"
    assert is_transient(caught.value)
    assert caught.value.service == "the index"


def test_a_server_that_does_not_answer_is_unavailable():
    server = FailingQdrant(503)
    with server:
        origin = server.origin
    index = _index(origin)    # the port is closed now
    with pytest.raises(IndexUnavailable):
        index.update_documents("handbook", ["a.md"], {"acl_public": False})
    index.close()


def test_a_refused_request_is_not_retried():
    with FailingQdrant(400) as server:
        index = _index(server.origin)
        with pytest.raises(UnexpectedResponse) as caught:
            index.delete_documents("handbook", ["a.md"])
        index.close()
    assert not is_transient(caught.value)
