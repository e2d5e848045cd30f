"""The user-ordered fallback across services."""

from __future__ import annotations

import pytest

from studio_core.errors import (
    ConnectionLost,
    ContentRefused,
    DependencyMissing,
    GenerationFailed,
    MissingCredentials,
    ProviderUnavailable,
    RequestTimedOut,
    ServerError,
)
from studio_core.models import GenerationRequest, JobImage, JobNotice, JobStarted
from studio_core.fallback import fallback_chain, generate_with_fallback
from studio_core.providers.cloud.huggingface import HuggingFaceProvider
from studio_core.providers.cloud.replicate import ReplicateProvider
from tests.cloud_servers import LoopbackServer, RecordingSleep, Reply, b64, of_type, png_bytes, replicate_prediction
from tests.conftest import run_async
from tests.fakes import FakeProvider


def req(**kw) -> GenerationRequest:
    return GenerationRequest(prompt="a slime enemy", service=kw.pop("service", "huggingface"), model=kw.pop("model", "some-model"), **kw)


async def run(request, providers, order=()):
    events = []
    async for ev in generate_with_fallback(request, job_id="j", get_provider=providers.__getitem__, order=order):
        events.append(ev)
    return events


def failing(sid: str, exc: Exception) -> FakeProvider:
    return FakeProvider(sid, script=[JobStarted("x"), exc])


def test_chain_puts_chosen_first_without_duplicates():
    assert fallback_chain("a", ["b", "a", "c", "b", ""]) == ["a", "b", "c"]


def test_chosen_service_works_and_images_name_it():
    provs = {"huggingface": FakeProvider("huggingface"), "replicate": FakeProvider("replicate")}
    events = run_async(run(req(batch=2), provs, order=["replicate"]))
    images = of_type(events, JobImage)
    assert len(images) == 2 and all(dict(i.info)["service"] == "huggingface" for i in images)
    assert not of_type(events, JobNotice) and provs["replicate"].requests == []


@pytest.mark.parametrize("error", [ProviderUnavailable("down"), ServerError("500 after retries"), MissingCredentials("no key")])
def test_unavailable_service_falls_back_and_says_which_made_it(error):
    provs = {"huggingface": failing("huggingface", error), "replicate": FakeProvider("replicate")}
    events = run_async(run(req(), provs, order=["replicate"]))
    (img,) = of_type(events, JobImage)
    assert dict(img.info)["service"] == "replicate" and dict(img.info)["fallback_from"] == "huggingface"
    notices = [n.message for n in of_type(events, JobNotice)]
    assert "Hugging Face is unavailable" in notices[0] and "Trying Replicate" in notices[0]
    assert "Made with Replicate" in notices[-1]
    sent = provs["replicate"].requests[0]
    assert sent.service == "replicate" and sent.model == "" and sent.prompt == "a slime enemy"


def test_missing_sdk_is_skipped():
    def get(sid):
        if sid == "openai":
            raise DependencyMissing("openai")
        return FakeProvider(sid)

    async def go():
        return [ev async for ev in generate_with_fallback(req(service="openai"), job_id="j", get_provider=get, order=["replicate"])]

    images = of_type(run_async(go()), JobImage)
    assert dict(images[0].info)["service"] == "replicate"


def test_content_refusal_does_not_fall_back():
    provs = {"huggingface": failing("huggingface", ContentRefused("nope")), "replicate": FakeProvider("replicate")}
    with pytest.raises(ContentRefused):
        run_async(run(req(), provs, order=["replicate"]))
    assert provs["replicate"].requests == []


def test_no_fallback_list_raises_the_original_error():
    provs = {"huggingface": failing("huggingface", ProviderUnavailable("down"))}
    with pytest.raises(ProviderUnavailable):
        run_async(run(req(), provs))


def test_everything_down_names_every_service():
    provs = {"huggingface": failing("huggingface", ProviderUnavailable("down", user_message="HF is down.")),
             "replicate": failing("replicate", ServerError("500", user_message="Replicate had a server error."))}
    with pytest.raises(GenerationFailed) as ei:
        run_async(run(req(), provs, order=["replicate"]))
    msg = ei.value.user_message
    assert "Hugging Face: HF is down." in msg and "Replicate: Replicate had a server error." in msg
    assert ei.value.retryable


def test_failure_after_an_image_stays_with_that_service():
    img = JobImage("x", png_bytes(), seed=1)
    provs = {"huggingface": FakeProvider("huggingface", script=[img, ProviderUnavailable("lost")]),
             "replicate": FakeProvider("replicate")}
    with pytest.raises(ProviderUnavailable):
        run_async(run(req(), provs, order=["replicate"]))
    assert provs["replicate"].requests == []


def test_real_providers_unreachable_hugging_face_falls_back_to_replicate():
    with LoopbackServer() as api:
        api.route("POST", r"/v1/models/black-forest-labs/flux-schnell/predictions",
                  Reply(201, replicate_prediction(output=[f"data:image/png;base64,{b64(png_bytes())}"])))
        provs = {
            "huggingface": HuggingFaceProvider(api_key="hf_abcdefghijkl", endpoint="http://127.0.0.1:9", timeout=2,
                                               attempts=2, base_delay=0.01, sleep=RecordingSleep()),
            "replicate": ReplicateProvider(api_key="r8_abcdefghijkl", endpoint=api.url, timeout=5, sleep=RecordingSleep()),
        }

        async def go():
            try:
                return await run(req(model="black-forest-labs/FLUX.1-schnell"), provs, order=["replicate"])
            finally:
                for p in provs.values():
                    await p.aclose()

        events = run_async(go())
    (img,) = of_type(events, JobImage)
    info = dict(img.info)
    assert info["service"] == "replicate" and info["model"] == "black-forest-labs/flux-schnell" and info["cost_usd"] == 0.003
    assert api.requests[0].json()["input"]["prompt"] == "a slime enemy"


def test_fallback_provider_wraps_the_policy_for_the_job_queue():
    from studio_core.providers.base import Provider
    from studio_core.fallback import fallback_provider_for, request_for_image

    order = ["replicate"]
    provs = {"huggingface": failing("huggingface", ProviderUnavailable("down")), "replicate": FakeProvider("replicate")}
    provider_for = fallback_provider_for(provs.__getitem__, lambda: order)
    prov = provider_for("huggingface")
    assert isinstance(prov, Provider) and prov.display_name == "Hugging Face"

    async def go():
        return [ev async for ev in prov.generate(req(), job_id="j")]

    (img,) = of_type(run_async(go()), JobImage)
    real = request_for_image(req(), img)
    assert real.service == "replicate" and real.prompt == "a slime enemy"
    assert request_for_image(req(), JobImage("j", b"", info=(("service", "huggingface"),))) == req()
    order.clear()  # the order is read per job, so Settings changes apply to the next one
    with pytest.raises(ProviderUnavailable):
        run_async(go())
    run_async(prov.cancel("j"))
    assert provs["huggingface"].cancelled == ["j"] and provs["replicate"].cancelled == []


@pytest.mark.parametrize("error", [RequestTimedOut("read timeout", sent=True), ConnectionLost("reset after send")],
                         ids=["timed-out-after-send", "connection-lost-after-send"])
def test_a_sent_request_that_got_no_answer_is_not_sent_to_the_next_service(error):
    """The first service may still make (and bill) the image: falling back would pay twice."""
    provs = {"huggingface": failing("huggingface", error), "replicate": FakeProvider("replicate")}
    with pytest.raises(type(error)):
        run_async(run(req(), provs, order=["replicate"]))
    assert provs["replicate"].requests == []


def test_a_request_that_never_left_still_falls_back():
    provs = {"huggingface": failing("huggingface", RequestTimedOut("connect timeout", sent=False)),
             "replicate": FakeProvider("replicate")}
    events = run_async(run(req(), provs, order=["replicate"]))
    (img,) = of_type(events, JobImage)
    assert dict(img.info)["service"] == "replicate"
