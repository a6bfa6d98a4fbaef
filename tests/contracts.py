"""The contract every inbound endpoint passes (docs/style.md rule 9; anymail's ``webhook_cases``
is the model): the CalDAV scheduling callback, the Google push webhook and the inbound-email
webhook each have a test class that inherits :class:`InboundEndpointContract` and provides
an ``endpoint`` fixture (:class:`Endpoint`).

1. **Verify first**: a request without the right credentials is refused, and records and
   enqueues nothing.
2. **Acknowledge fast**: a verified request is answered after a bounded number of queries,
   having recorded the work and handed it over, and done none of it (no email, no call to
   Google, the CalDAV server or another outside system).
3. **Replay is a no-op**: the same request again gets the same answer and records nothing
   more.
4. **Hostile input never gets a 5xx**: malformed, oversized or absurd requests are refused
   or ignored, never an error page (senders retry 5xx, and a 5xx hides a bug).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

# An acknowledgement stores the request and hands it over; it never grows with the input.
MAX_ACK_QUERIES = 25


@dataclass(frozen=True)
class InboundRequest:
    body: bytes = b""
    content_type: str = ""
    headers: dict[str, str] = field(default_factory=dict)
    name: str = ""  # says which case a hostile request is, in failure messages


class Endpoint(Protocol):
    url: str
    accepted: tuple[int, ...]  # statuses of a verified request
    refused: tuple[int, ...]  # statuses of an unverified one (Google's: 200, then ignored)

    def valid(self) -> InboundRequest: ...

    def unverified(self) -> list[InboundRequest]:
        """Requests with wrong or missing credentials (and nothing else wrong)."""
        ...

    def hostile(self) -> list[InboundRequest]: ...

    def recorded(self) -> int:
        """How much work the endpoint has recorded (rows of its own)."""
        ...

    def handed_over(self) -> int:
        """How much work was handed to the workers (enqueued, or to be enqueued on commit)."""
        ...

    def worked(self) -> int:
        """How much of the work was done: emails sent, outside systems called."""
        ...


def send(client: Client, request: InboundRequest, url: str) -> Any:
    return client.post(
        url, data=request.body, content_type=request.content_type, headers=request.headers
    )


class InboundEndpointContract:
    """Inherit it in a ``Test...`` class and provide the ``endpoint`` fixture."""

    def test_contract_verifies_first_and_records_nothing_when_credentials_are_wrong(
        self, client: Client, endpoint: Endpoint
    ) -> None:
        for request in endpoint.unverified():
            response = send(client, request, endpoint.url)
            assert response.status_code in endpoint.refused, (request.name, response.status_code)
        assert (endpoint.recorded(), endpoint.handed_over(), endpoint.worked()) == (0, 0, 0)

    def test_contract_acknowledges_fast_and_leaves_the_work_to_a_worker_when_valid(
        self, client: Client, endpoint: Endpoint
    ) -> None:
        with CaptureQueriesContext(connection) as queries:
            response = send(client, endpoint.valid(), endpoint.url)
        assert response.status_code in endpoint.accepted, response.content
        assert len(queries) <= MAX_ACK_QUERIES
        assert endpoint.recorded() >= 1
        assert endpoint.handed_over() >= 1
        assert endpoint.worked() == 0

    def test_contract_treats_a_replay_as_a_no_op_when_the_same_request_comes_again(
        self, client: Client, endpoint: Endpoint
    ) -> None:
        request = endpoint.valid()
        first = send(client, request, endpoint.url)
        recorded, handed_over = endpoint.recorded(), endpoint.handed_over()
        again = send(client, request, endpoint.url)
        assert again.status_code == first.status_code
        assert endpoint.recorded() == recorded
        assert endpoint.handed_over() == handed_over

    def test_contract_never_answers_5xx_when_the_input_is_hostile(
        self, client: Client, endpoint: Endpoint
    ) -> None:
        for request in endpoint.hostile():
            response = send(client, request, endpoint.url)
            assert response.status_code < 500, (request.name, response.status_code)
