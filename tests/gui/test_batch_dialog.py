"""The Batch dialog: count, time and cost before starting; broken rows named; a run with progress,
pause/resume; the Generate tab's button; a batch a crash left unfinished is offered again."""

from __future__ import annotations

import pytest

from studio_core.models import GenerationRequest
from tests.fakes import FakeProvider
from tests.gui.conftest import wait_until


@pytest.fixture
def fake(core):
    provider = FakeProvider(steps=2, delay=0.01)
    core.jobs.provider_for = lambda service: provider
    return provider


@pytest.fixture
def dialog(qtbot, core, loop, fake):
    from studio_core.batch import BatchManager
    from studio_gui.batch.dialog import BatchDialog
    from studio_gui.tasks import TaskOwner

    tasks = TaskOwner()
    manager = BatchManager(core)
    loop.run_until_complete(manager.open())
    dlg = BatchDialog(core, manager, tasks=tasks,
                      template_source=lambda: GenerationRequest("", service="comfyui", width=512, height=512))
    qtbot.addWidget(dlg)
    dlg.show()
    yield dlg
    for run in manager.runs.values():
        run.cancel()
    loop.run_until_complete(wait_until(lambda: not core.jobs.busy))
    loop.run_until_complete(tasks.cancel_all())


def test_the_summary_counts_jobs_and_says_free_before_starting(dialog, loop):
    assert not dialog.start_button.isEnabled() and "Paste prompts" in dialog.start_button.toolTip()
    dialog.set_list("a {red|blue} potion\na chest", csv_mode=False)
    dialog.seeds.setValue(2)
    dialog.sizes.setText("512x512, 768x512")
    result = loop.run_until_complete(dialog.refresh_preview())
    assert len(result.jobs) == 12  # (2 + 1) prompts × 2 seeds × 2 sizes
    assert dialog.summary.text().startswith("12 images") and dialog.summary.text().endswith("free")
    assert dialog.start_button.isEnabled()


def test_broken_rows_and_a_missing_word_list_are_named(dialog, loop, tmp_path):
    dialog.set_list("prompt,seed\ngood one,1\nbad one,xx\nthird,3\n", csv_mode=True)
    loop.run_until_complete(dialog.refresh_preview())
    assert "Row 3: seed 'xx' is not a number" in dialog.problems.text() and dialog.problems.isVisible()
    assert dialog.summary.text().startswith("2 images")
    dialog.set_list("a __colors__ slime", csv_mode=False)
    dialog.words_folder.setText(str(tmp_path))
    loop.run_until_complete(dialog.refresh_preview())
    assert "colors.txt" in dialog.problems.text() and not dialog.start_button.isEnabled()
    dialog.sizes.setText("big")
    loop.run_until_complete(dialog.refresh_preview())
    assert "'big' is not a size" in dialog.problems.text()


def test_open_a_csv_file(dialog, loop, tmp_path):
    f = tmp_path / "list.csv"
    f.write_text("prompt,count\nslime,3\n", "utf-8")
    loop.run_until_complete(dialog.open_file(f))
    loop.run_until_complete(dialog.refresh_preview())
    assert dialog.source_label.text() == "list.csv" and len(dialog.preview_result.jobs) == 3
    loop.run_until_complete(dialog.open_file(tmp_path / "list.json"))
    assert "use a .txt" in dialog.problems.text()


def test_a_run_shows_progress_pauses_resumes_and_exports_a_sheet(dialog, loop, core, fake, tmp_path):
    dialog.name.setText("slimes")
    dialog.set_list("slime {1|2|3|4|5|6}", csv_mode=False)
    loop.run_until_complete(dialog.refresh_preview())
    run = loop.run_until_complete(dialog.start())
    assert run is not None and dialog.progress.isVisible()
    loop.run_until_complete(wait_until(lambda: len(run.done) >= 1))
    dialog.pause_button.click()
    loop.run_until_complete(run.wait())
    assert run.state == "paused" and dialog.pause_button.text() == "Resume"
    assert "Paused" in dialog.status.text()
    dialog.pause_button.click()
    loop.run_until_complete(run.wait())
    assert run.state == "finished"
    assert dialog.progress.value() == 6 and dialog.progress.maximum() == 6
    assert core.settings.current.batch_wordlists_folder == ""
    sheet = loop.run_until_complete(dialog.export_sheet(tmp_path / "sheet.png"))
    assert sheet is not None and sheet.exists() and "Contact sheet saved" in dialog.status.text()


def test_the_generate_tab_button_offers_an_unfinished_batch(qtbot, core, loop, fake):
    from studio_core.batch import BatchManager
    from studio_core.pool import prompt_list
    from studio_gui.generate.tab import GenerateTab
    from studio_gui.tasks import TaskOwner

    # A batch that stopped part-way (as after a crash): paused on disk.
    jobs = prompt_list.expand(prompt_list.parse_lines("one\ntwo\nthree")).jobs

    async def leave_paused():
        m = BatchManager(core)
        run = await m.start("left over", GenerationRequest("", service="comfyui"), jobs)
        run.pause()
        await run.wait()

    loop.run_until_complete(leave_paused())
    core.settings.update(selected_service="openai")
    tasks = TaskOwner()
    tab = GenerateTab(core, tasks=tasks)
    qtbot.addWidget(tab)
    tab.show()
    loop.run_until_complete(tab.started())
    loop.run_until_complete(wait_until(lambda: "unfinished" in tab.batch_button.text()))
    tab.batch_button.click()
    dlg = tab._batch_dialog
    assert dlg.isVisible() and dlg.run is not None and dlg.run.rec.name == "left over"
    assert dlg.pause_button.text() == "Resume" and dlg.pause_button.isEnabled()
    dlg.close()
    tab.closing()
    loop.run_until_complete(wait_until(lambda: not core.jobs.busy))
    loop.run_until_complete(tasks.cancel_all())


def test_the_gallery_filter_offers_batch_sets_and_filters_by_one(qtbot):
    from studio_gui.gallery.filter_bar import FilterBar

    bar = FilterBar()
    qtbot.addWidget(bar)
    bar.show()
    assert not bar.set_filter.isVisible()  # no batch yet: no menu
    bar.set_sets(["potions", "slimes"])
    assert bar.set_filter.isVisible() and bar.query().set_name == ""
    with qtbot.waitSignal(bar.set_filter.currentIndexChanged):
        bar.set_filter.setCurrentIndex(2)
    assert bar.query().set_name == "slimes" and "set 'slimes'" in bar.active_filters()
    bar.set_sets(["new one", "potions", "slimes"])
    assert bar.query().set_name == "slimes"  # the choice survives a refresh
    bar.clear_filters()
    assert bar.query().set_name == "" and bar.is_default()
