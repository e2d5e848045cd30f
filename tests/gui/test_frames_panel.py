"""FramesPanel and FrameSetTracker: variants and animation frames through the real JobQueue."""

from __future__ import annotations

import asyncio
import random
from pathlib import Path

import pytest

from studio_core.errors import GenerationFailed
from studio_core.models import GenerationRequest
from tests.fakes import FakeProvider
from tests.gui.conftest import wait_until


class FlakyProvider(FakeProvider):
    """Fails every request whose prompt contains ``fail_on``; the others succeed."""

    def __init__(self, fail_on: str = "", **kw):
        super().__init__(**kw)
        self.fail_on = fail_on

    async def generate(self, request, *, job_id):
        if self.fail_on and self.fail_on in request.prompt:
            self.requests.append(request)
            raise GenerationFailed("boom", user_message="The server ran out of memory on this frame.")
            yield  # pragma: no cover  (makes this an async generator)
        async for ev in super().generate(request, job_id=job_id):
            yield ev


@pytest.fixture
def fake(core):
    provider = FlakyProvider(steps=1)
    core.jobs.provider_for = lambda service: provider
    return provider


@pytest.fixture
def panel(qtbot, core, loop, fake):
    from studio_gui.sprites.frames_panel import FramesPanel
    from studio_gui.tasks import TaskOwner

    tasks = TaskOwner()
    p = FramesPanel(core, tasks=tasks)
    qtbot.addWidget(p)
    loop.run_until_complete(p.load())
    yield p
    loop.run_until_complete(tasks.cancel_all())


def base(**kw) -> GenerationRequest:
    fields = dict(prompt="a knight", service="fakeservice", seed=1234, width=512, height=512, steps=12, cfg=5.0)
    fields.update(kw)
    return GenerationRequest(**fields)


def test_single_image_is_passed_through(panel):
    req = base(seed=None, batch=2)
    assert panel.mode() == "single"
    assert panel.expand(req) == [req]


def test_variants_consecutive_seeds_and_batches(panel):
    from studio_gui.sprites.frames_panel import FrameSettings

    panel.set_settings(FrameSettings(mode="variants", count=8))
    # A service without batching: one job per variant, seeds counting up.
    reqs = panel.expand(base())
    assert [r.seed for r in reqs] == list(range(1234, 1242))
    assert {(r.batch, r.steps, r.width, r.prompt) for r in reqs} == {(1, 12, 512, "a knight")}
    assert panel.describe(base()) == "8 variants · 8 jobs · seeds 1234–1241"
    # ComfyUI batches up to its Batch setting (the one the VRAM gauge checked).
    comfy = panel.expand(base(service="comfyui", batch=4))
    assert [(r.seed, r.batch) for r in comfy] == [(1234, 4), (1238, 4)]
    assert panel.describe(base(service="comfyui", batch=4)).startswith("8 variants · 2 jobs of 4")
    # A cloud model whose catalog entry allows 4 per call, with its price.
    cloud = panel.expand(base(service="replicate", model="black-forest-labs/flux-schnell"))
    assert [r.batch for r in cloud] == [4, 4]
    assert "≈ $" in panel.describe(base(service="replicate", model="black-forest-labs/flux-schnell"))
    # No seed: one is picked, and the variants still count up from it.
    panel.rng = random.Random(5)
    free = panel.expand(base(seed=None))
    assert [r.seed - free[0].seed for r in free] == list(range(8))


def test_eight_direction_walk(panel):
    from studio_gui.sprites.frames_panel import FrameSettings

    panel.set_settings(FrameSettings(mode="animation", animation="walk", directions=8))
    reqs = panel.expand(base())
    assert len(reqs) == 64
    assert {r.seed for r in reqs} == {1234}
    assert {(r.width, r.height, r.steps, r.cfg, r.batch) for r in reqs} == {(512, 512, 12, 5.0, 1)}
    for word in ("front view", "facing down-left", "facing left", "back view", "facing up-right", "facing right"):
        assert sum(word in r.prompt for r in reqs) >= 8, word
    assert all(r.prompt.startswith("a knight, ") for r in reqs)
    assert "contact pose, left foot" in reqs[0].prompt and "up pose, rising on right" in reqs[7].prompt
    assert panel.describe(base()) == "64 frames (8 directions × 8) · 64 jobs · seed 1234 fixed"
    # Fewer frames per direction: poses spread over the cycle, both feet still there.
    panel.per_direction.setValue(4)
    plan = panel.plan(base())
    assert len(plan.requests) == 32 and plan.names[:4] == ("walk_down_00", "walk_down_01", "walk_down_02", "walk_down_03")
    four = [r.prompt for r in plan.requests[:4]]
    assert "left foot forward" in four[0] and "right foot forward" in four[2]
    # No seed in the request: every frame shares the one picked.
    assert len({r.seed for r in panel.expand(base(seed=None))}) == 1


def test_summary_line_follows_the_controls(panel, qtbot):
    panel.set_request_source(lambda: base())
    panel.set_expanded(True)
    panel.set_mode("animation")
    panel.directions.setCurrentIndex(panel.directions.findData(1))
    assert panel.summary.text() == "8 frames · 8 jobs · seed 1234 fixed"
    assert panel.toggle.text() == "Frames: Animation" and not panel.variants_row.isVisibleTo(panel)
    panel.set_expanded(False)  # collapsed, the header says what a click will queue
    assert panel.toggle.text() == "Frames: Animation — 8 frames · 8 jobs · seed 1234 fixed"
    panel.set_request_source(lambda: base(seed=None))
    assert panel.summary.text() == "8 frames · 8 jobs · one random seed, fixed"


def run_set(loop, panel, request):
    got: list = []
    panel.tracker.set_finished.connect(lambda paths, meta: got.append((paths, meta)))
    job_ids = panel.submit(request)
    loop.run_until_complete(wait_until(lambda: got, timeout=20))
    return job_ids, got[0]


def test_tracker_collects_a_walk_in_frame_order(loop, panel, fake, core):
    from studio_core.storage.images import read_metadata

    panel.set_mode("animation")
    panel.directions.setCurrentIndex(panel.directions.findData(4))
    panel.per_direction.setValue(2)
    job_ids, (paths, meta) = run_set(loop, panel, base())
    assert len(job_ids) == 8 and len(paths) == 8 and meta["failed"] == []
    assert meta["names"] == ["walk_down_00", "walk_down_01", "walk_left_00", "walk_left_01",
                             "walk_right_00", "walk_right_01", "walk_up_00", "walk_up_01"]
    assert all(Path(p).is_file() for p in paths)
    prompts = [read_metadata(Path(p)).request.prompt for p in paths]
    assert [r.prompt for r in fake.requests] == prompts  # the queue ran them in order, and order is kept
    assert meta["seed"] == 1234 and meta["directions"] == 4 and meta["frames_per_direction"] == 2
    assert panel.ready_bar.isVisibleTo(panel) and "8 frames ready" in panel.ready_bar.text.text()


def test_batched_variants_keep_image_order(loop, panel, core):
    panel.set_mode("variants")
    panel.count.setValue(5)
    job_ids, (paths, meta) = run_set(loop, panel, base(service="comfyui", batch=2))
    assert len(job_ids) == 3 and len(paths) == 5
    from studio_core.storage.images import read_metadata

    assert [read_metadata(Path(p)).seed for p in paths] == [1234, 1235, 1236, 1237, 1238]
    assert meta["names"] == [f"variant_{i:02d}" for i in range(5)]


def test_one_failing_frame_is_reported_and_the_rest_kept(loop, panel, fake):
    fake.fail_on = "walk cycle passing pose, right leg passing"
    panel.set_mode("animation")
    failures: list = []
    panel.tracker.frame_failed.connect(lambda set_id, name, why: failures.append((name, why)))
    _, (paths, meta) = run_set(loop, panel, base())
    assert len(paths) == 7 and "walk_02" not in meta["names"]
    assert meta["failed"] == [("walk_02", "The server ran out of memory on this frame.")]
    assert failures == meta["failed"]
    bar = panel.ready_bar
    assert "7 of 8 ready" in bar.text.text() and "walk_02" in bar.text.text()
    assert bar.sheet_button.isEnabled()


def test_cancelled_frames_are_reported(loop, panel, fake, core):
    fake.delay = 0.2
    fake.steps = 2
    panel.set_mode("variants")
    panel.count.setValue(3)
    got: list = []
    panel.tracker.set_finished.connect(lambda paths, meta: got.append((paths, meta)))
    job_ids = panel.submit(base())
    core.jobs.cancel(job_ids[2])  # still waiting
    loop.run_until_complete(wait_until(lambda: got, timeout=20))
    paths, meta = got[0]
    assert len(paths) == 2 and meta["failed"] == [("variant_02", "cancelled")]


def test_make_sheet_opens_sprite_tools_with_the_frames(loop, panel, monkeypatch):
    from studio_gui.sprites import dialog

    opened: list = []
    monkeypatch.setattr(dialog, "open_sprite_tools", lambda parent, core, paths: opened.append(paths))
    panel.set_mode("animation")
    panel.template.setCurrentIndex(panel.template.findData("idle"))
    _, (paths, meta) = run_set(loop, panel, base())
    panel.ready_bar.sheet_button.click()
    assert opened == [paths] and len(paths) == 4


def test_make_sheet_prepares_the_sheet_tab(loop, panel, core):
    panel.set_mode("animation")
    panel.template.setCurrentIndex(panel.template.findData("attack"))
    panel.directions.setCurrentIndex(panel.directions.findData(4))
    panel.per_direction.setValue(2)
    _, (paths, meta) = run_set(loop, panel, base())
    dlg = panel.open_sheet(paths, meta)
    try:
        tab = dlg.sheet_tab
        assert dlg.tabs.currentWidget() is tab and tab.ordered_paths() == paths
        assert tab.name.text() == "attack" and tab.align.isChecked() and tab.columns.value() == 2
        assert tab.frames_list.item(0).text() == "attack_down_00" and tab.frames_list.item(7).text() == "attack_up_01"
        loop.run_until_complete(wait_until(lambda: tab.message.text().startswith("Ready to drag"), timeout=20))
    finally:
        dlg.close()
        dlg.deleteLater()


def test_frame_animations_follow_names_past_failed_frames():
    from studio_gui.sprites.frames_panel import frame_animations

    meta = {"all_names": ["walk_down_00", "walk_down_01", "walk_up_00", "walk_up_01"],
            "animations": ["walk_down", "walk_down", "walk_up", "walk_up"]}
    assert frame_animations(meta, ["walk_down_00", "walk_up_00", "walk_up_01"]) == ["walk_down", "walk_up", "walk_up"]
    assert frame_animations({"names": ["variant_00"]}, ["variant_00"]) == [None]


def test_ready_bar_hand_over_exports_one_animation_per_direction(loop, panel, monkeypatch):
    """8 directions × 4 frames through the real queue and the "Align & make sheet" button:
    Godot gets 8 SpriteFrames animations of 4 frames, Aseprite 8 frame tags."""
    import json

    from studio_core.sprites.frames import DIRECTIONS
    from studio_gui.sprites import dialog
    from tests.core.test_sprites_sheet import parse_tres

    opened: list = []
    real_open = dialog.open_sprite_tools
    monkeypatch.setattr(dialog, "open_sprite_tools", lambda *a: opened.append(real_open(*a)) or opened[-1])
    panel.set_mode("animation")
    panel.template.setCurrentIndex(panel.template.findData("walk"))
    panel.directions.setCurrentIndex(panel.directions.findData(8))
    panel.per_direction.setValue(4)
    _, (paths, meta) = run_set(loop, panel, base())
    assert len(paths) == 32 and meta["failed"] == []
    panel.ready_bar.sheet_button.click()
    assert len(opened) == 1
    dlg = opened[0]
    try:
        tab = dlg.sheet_tab
        loop.run_until_complete(wait_until(lambda: tab.message.text().startswith("Ready to drag"), timeout=30))
        files = {p.suffix: p for p in tab.preview.files()}
        expected = [f"walk_{key}" for key, _ in DIRECTIONS[8]]

        sections = parse_tres(files[".tres"].read_text())
        anims = sections[-1][2]["animations"]
        assert [a["name"][1] for a in anims] == expected
        assert all(len(a["frames"]) == 4 and a["loop"] is True and a["speed"] == 10.0 for a in anims)

        data = json.loads(files[".json"].read_text())
        tags = data["meta"]["frameTags"]
        assert [(t["name"], t["from"], t["to"]) for t in tags] == [(n, 4 * k, 4 * k + 3) for k, n in enumerate(expected)]
        assert list(data["frames"])[:5] == ["walk_down_00", "walk_down_01", "walk_down_02", "walk_down_03",
                                           "walk_down_left_00"]
        assert tab.columns.value() == 4  # one direction per row
    finally:
        dlg.close()
        dlg.deleteLater()


def test_walk_summary_names_time_and_cost(panel, core):
    """Issue 11 item 8: '64 frames · 64 jobs' also says how long and what it costs."""
    from studio_gui.sprites.frames_panel import FrameSettings

    panel.set_settings(FrameSettings(mode="animation", animation="walk", directions=8))
    local = panel.describe(base(service="comfyui"))
    assert local.startswith("64 frames (8 directions × 8) · 64 jobs")
    assert "~25 s–45 s each" in local and local.endswith("free")
    # A cloud model: the catalog's price per image times 64.
    cloud = panel.describe(base(service="replicate", model="black-forest-labs/flux-schnell"))
    from studio_core import costs

    price = costs.price_per_image("replicate", "black-forest-labs/flux-schnell", width=512, height=512,
                                  cat=panel._catalog).total(64)
    assert price > 0 and f"≈ ${price:.2f}" in cloud


def test_measured_speed_of_recent_jobs_beats_the_hint():
    from types import SimpleNamespace as NS

    from studio_gui.sprites.frame_estimate import seconds_per_image, time_text

    def entry(service, started, ended, images=1, state="done"):
        return NS(state=state, request=NS(service=service), started=started, ended=ended, images=images)

    entries = [entry("comfyui", 0, 12), entry("comfyui", 100, 124, images=2), entry("comfyui", 0, 500, state="failed"),
               entry("openai", 0, 60), entry("comfyui", 50, 50)]
    assert seconds_per_image(entries, "comfyui") == 12.0
    assert time_text(images=64, service="comfyui", per_image=12.0) == "~13 min"
    assert time_text(images=64, service="openai", per_image=None) == ""  # no figure invented
    assert seconds_per_image(entries, "replicate") is None
