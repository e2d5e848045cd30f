"""A 2xx whose body is not a JSON object reads the same for every HTTP provider that
expects one (providers.cloud.common.json_object): InvalidResponse, "sent back a damaged
answer", never retried, the key nowhere in it."""

from __future__ import annotations

import pytest

from studio_core.errors import InvalidResponse
from tests.cloud_servers import LoopbackServer, Reply, collect
from tests.conftest import run_async
from tests.core import test_cloud_replicate as replicate
from tests.core import test_pool_runpod as runpod

BODIES = [
    pytest.param(b'{"id": "x", "status": ', id="cut-off"),
    pytest.param(b'["IN_QUEUE"]', id="a-list"),
    pytest.param(b'"queued"', id="a-string"),
]


def damaged(make, route: str, body: bytes, request, key: str) -> InvalidResponse:
    with LoopbackServer() as api:
        api.route("POST", route, Reply(201, body, content_type="application/json"))
        with pytest.raises(InvalidResponse) as ei:
            run_async(collect(make(api), request))
    return ei.value


@pytest.mark.parametrize("body", BODIES)
def test_runpod_and_replicate_say_the_same_for_a_body_they_cannot_read(body):
    errors = {
        "RunPod": damaged(runpod.make, runpod.EP + "/run", body, runpod.req(), runpod.KEY),
        "Replicate": damaged(replicate.make, replicate.CREATE, body, replicate.req(), replicate.KEY),
    }
    for service, err in errors.items():
        assert err.user_message == f"{service} sent back a damaged answer."
        assert not err.retryable
        assert runpod.KEY not in str(err) and replicate.KEY not in str(err)
