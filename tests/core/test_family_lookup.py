"""Which server is asked about a model's family, where its file is on this computer, and where
the user's answer is kept (studio_core.providers.comfy.family_lookup), against fake servers."""

from __future__ import annotations

import pytest

from studio_core.hardware.families import FLUX, SD15, SDXL, UNKNOWN
from studio_core.pool.provider import PoolProvider
from studio_core.pool.servers import ServerSpec
from studio_core.providers.comfy.family_lookup import MANAGED_KEY, family_of, models_dir_of, with_answer
from studio_core.providers.comfy.provider import ComfyProvider
from studio_core.settings import Settings
from tests.conftest import run_async
from tests.core.test_model_family import SDXL_TENSORS, write_safetensors
from tests.family_servers import ModelServer

ODD = "my_model_v3.safetensors"  # a name that says nothing


def pool(*entries: tuple[str, ModelServer], **kw) -> PoolProvider:
    specs = [ServerSpec(id=sid, name=sid, url=fake.url, **kw) for sid, fake in entries]
    return PoolProvider(specs, secret=lambda name: None, poll_s=60)


def test_the_server_that_has_the_file_is_asked_and_its_answer_is_kept_under_its_address():
    async def main():
        async with ModelServer(["a.safetensors"]) as a, \
                ModelServer([ODD], metadata={("checkpoints", ODD): {"ss_base_model_version": "sdxl_base_v1-0"}}) as b:
            p = pool(("a", a), ("b", b))
            try:
                await p.refresh()
                answer = await family_of(p, ODD, Settings())
            finally:
                await p.aclose()
            return answer, a.metadata_asked, b.metadata_asked, b.url

    answer, asked_a, asked_b, b_url = run_async(main())
    assert answer.guess.family is SDXL and answer.guess.source == "metadata"
    assert asked_a == [] and asked_b == [("checkpoints", ODD)]
    assert answer.server_key == b_url and answer.server_name == "b" and not answer.needs_asking


def test_a_file_only_unetloader_lists_is_looked_up_in_diffusion_models():
    async def main():
        async with ModelServer([], unets=["mystery.safetensors"]) as fake:
            p = ComfyProvider(fake.url)
            try:
                return await family_of(p, "mystery.safetensors", Settings()), fake.metadata_asked
            finally:
                await p.aclose()

    answer, asked = run_async(main())
    assert asked == [("diffusion_models", "mystery.safetensors")]
    assert answer.guess.family is FLUX and answer.guess.source == "folder"


def test_the_local_file_header_decides_for_a_loopback_server_with_a_known_folder(tmp_path):
    folder = tmp_path / "ComfyUI"
    write_safetensors(folder / "models" / "checkpoints" / ODD, SDXL_TENSORS)

    async def main():
        async with ModelServer([ODD]) as fake:  # answers, but has no metadata for the file
            p = ComfyProvider(fake.url)
            try:
                local = await family_of(p, ODD, Settings(comfy_server_folder=str(folder)))
                no_folder = await family_of(p, ODD, Settings())
            finally:
                await p.aclose()
            return local, no_folder

    local, no_folder = run_async(main())
    assert local.guess.family is SDXL and local.guess.source == "tensors"
    assert no_folder.guess.family is UNKNOWN and no_folder.needs_asking


def test_a_remote_server_never_reads_a_local_file_of_the_same_name(tmp_path):
    folder = tmp_path / "ComfyUI"
    write_safetensors(folder / "models" / "checkpoints" / ODD, SDXL_TENSORS)
    # A pool entry on another machine, never polled: nothing is sent anywhere, and that
    # machine's file of the same name is not this computer's file.
    p = PoolProvider([ServerSpec(id="laptop", name="laptop", url="http://192.0.2.1:8188")],
                     secret=lambda name: None, poll_s=60)

    async def main():
        try:
            return await family_of(p, ODD, Settings(comfy_server_folder=str(folder)))
        finally:
            await p.aclose()

    answer = run_async(main())
    assert answer.guess.source != "tensors" and answer.needs_asking
    assert answer.server_key == "http://192.0.2.1:8188"


def test_models_folder_of_a_portable_build(tmp_path):
    (tmp_path / "portable" / "ComfyUI" / "models").mkdir(parents=True)
    (tmp_path / "git" / "models").mkdir(parents=True)
    assert models_dir_of(str(tmp_path / "portable")) == tmp_path / "portable" / "ComfyUI" / "models"
    assert models_dir_of(str(tmp_path / "git")) == tmp_path / "git" / "models"
    assert models_dir_of(str(tmp_path / "nothing")) is None and models_dir_of("") is None


def test_the_users_answer_is_remembered_per_server_and_other_is_an_answer():
    async def main():
        async with ModelServer([ODD]) as fake:
            p = ComfyProvider(fake.url)
            try:
                first = await family_of(p, ODD, Settings())
                said = Settings(model_families=with_answer(Settings(), fake.url, ODD, "sd15"))
                second = await family_of(p, ODD, said)
                other = Settings(model_families=with_answer(Settings(), fake.url, ODD, "other"))
                third = await family_of(p, ODD, other)
                elsewhere = Settings(model_families=with_answer(Settings(), "http://10.0.0.9:8188", ODD, "sd15"))
                fourth = await family_of(p, ODD, elsewhere)
            finally:
                await p.aclose()
            return first, second, third, fourth

    first, second, third, fourth = run_async(main())
    assert first.needs_asking
    assert second.guess.family is SD15 and second.guess.source == "user"
    assert third.guess.family is UNKNOWN and third.guess.source == "user" and not third.needs_asking
    assert fourth.needs_asking  # another server's answer is that server's


def test_with_answer_keeps_other_answers_and_refuses_a_made_up_family():
    s = Settings(model_families={"http://a": {"x.safetensors": "sdxl"}})
    out = with_answer(s, MANAGED_KEY, "y.safetensors", "flux")
    assert out == {"http://a": {"x.safetensors": "sdxl"}, MANAGED_KEY: {"y.safetensors": "flux"}}
    assert s.model_families == {"http://a": {"x.safetensors": "sdxl"}}  # not changed in place
    with pytest.raises(ValueError):
        with_answer(s, "http://a", "x.safetensors", "sd9")


def test_the_managed_server_is_remembered_under_one_key_whatever_its_port(tmp_path):
    async def main():
        async with ModelServer([ODD]) as fake:
            p = PoolProvider([ServerSpec(id="managed", name="Started by the app", url=fake.url)],
                             secret=lambda name: None, poll_s=60)
            try:
                await p.refresh()
                return await family_of(p, ODD, Settings())
            finally:
                await p.aclose()

    assert run_async(main()).server_key == MANAGED_KEY
