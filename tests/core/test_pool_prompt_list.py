"""Batch prompt lists: lines, .txt, .csv, wildcards and word lists, seeds × sizes, stable ids, bad input."""

from __future__ import annotations

import pytest

from studio_core.pool import prompt_list as pl
from studio_core.pool.errors import PromptListError
from studio_core.pool.wildcards import MissingWordList, WordLists, expand_all


def test_pasted_lines_skip_blanks_and_comments():
    p = pl.parse_lines("a knight\n\n# my notes\n  a wizard  \r\n")
    assert [(r.row, r.prompt) for r in p.rows] == [(1, "a knight"), (4, "a wizard")] and not p.problems


def test_choices_and_word_lists_expand_to_every_combination(tmp_path):
    (tmp_path / "colors").mkdir()
    (tmp_path / "animal.txt").write_text("# pets\ncat\n\ndog {big|small}\n", encoding="utf-8")
    (tmp_path / "colors" / "warm.txt").write_text("red\norange\n", encoding="utf-8")
    lists = WordLists(tmp_path)
    assert expand_all("a {red|blue|green} gem", lists) == ["a red gem", "a blue gem", "a green gem"]
    assert expand_all("__animal__ in __colors/warm__", lists) == [
        "cat in red", "cat in orange", "dog big in red", "dog big in orange", "dog small in red", "dog small in orange"]
    assert expand_all("{a|{b|c}} {x|}", lists) == ["a x", "a", "b x", "b", "c x", "c"]


def test_seeds_and_sizes_multiply_and_rows_may_override():
    p = pl.parse_csv("prompt,seed,width,height,count\nknight,,,,\nwizard,7,512,768,2\n")
    b = pl.expand(p, seeds=(1, 2), sizes=((1024, 1024), (832, 1216)))
    knights = [(j.seed, j.width, j.height) for j in b.jobs if j.prompt == "knight"]
    assert knights == [(1, 1024, 1024), (2, 1024, 1024), (1, 832, 1216), (2, 832, 1216)]
    wizards = [(j.seed, j.width, j.height) for j in b.jobs if j.prompt == "wizard"]
    assert wizards == [(7, 512, 768), (8, 512, 768)]  # count 2 → seed, seed + 1
    assert len({j.id for j in b.jobs}) == len(b.jobs)


def test_ids_are_stable_across_reads_and_edits_of_other_rows():
    text = "knight\nwizard\nknight\n"
    first = pl.expand(pl.parse_lines(text))
    again = pl.expand(pl.parse_lines(text))
    assert [j.id for j in first.jobs] == [j.id for j in again.jobs]
    assert [j.seed for j in first.jobs] == [j.seed for j in again.jobs]  # derived seeds too: a re-run is the same image
    assert len({j.id for j in first.jobs}) == 3  # the repeated line is a second job, not a duplicate id
    edited = pl.expand(pl.parse_lines("a new first line\nknight\nwizard\nknight\n"))
    assert {j.id for j in first.jobs} <= {j.id for j in edited.jobs}
    assert {j.id for j in pl.expand(pl.parse_lines(text), salt="other batch").jobs}.isdisjoint({j.id for j in first.jobs})


def test_csv_broken_rows_are_named_and_the_rest_kept():
    text = ("Prompt;Negative;Seed;Width;Height;Count;notes\n"
            "a knight;blurry;1;512;512;1;ok\n"
            "a wizard;;abc;512;512;1;\n"
            ";;;;;;\n"
            "a dragon;;;;768;1;\n"
            "a castle;;;100000;512;1;\n"
            ";just a negative;;;;;\n"
            "a slime;;;;;3;\n")
    p = pl.parse_csv(text)
    assert [r.prompt for r in p.rows] == ["a knight", "a slime"]
    assert p.rows[0].negative == "blurry" and p.rows[1].count == 3
    assert [str(x) for x in p.problems] == [
        "Row 3: seed 'abc' is not a number",
        "Row 5: gives only one of width and height",
        "Row 6: width 100000 is outside 64–8192",
        "Row 7: has no prompt",
    ]
    b = pl.expand(p)
    assert len(b.jobs) == 4 and b.problems == p.problems


def test_csv_with_too_many_fields_and_a_broken_quote():
    p = pl.parse_csv('prompt,seed\n"a knight, with sword",1\na wizard, old,2\nan elf,3\n"unclosed,4\n')
    assert [r.prompt for r in p.rows] == ["a knight, with sword", "an elf"]
    assert str(p.problems[0]).startswith("Row 3: has 3 fields but the header names 2")
    assert p.problems[-1].row == 5 and "cannot be read" in p.problems[-1].message


def test_csv_without_a_prompt_column_says_which_columns_it_found():
    with pytest.raises(PromptListError) as err:
        pl.parse_csv("text,seed\nknight,1\n")
    assert "no 'prompt' column" in err.value.user_message and "found: text, seed" in err.value.user_message


def test_missing_word_list_names_the_file_and_keeps_other_rows(tmp_path):
    b = pl.expand(pl.parse_lines("a __monster__ sprite\na knight\n"), lists=WordLists(tmp_path))
    assert [j.prompt for j in b.jobs] == ["a knight"]
    (problem,) = b.problems
    assert problem.row == 1 and "__monster__" in problem.message and str(tmp_path / "monster.txt") in problem.message
    with pytest.raises(MissingWordList):
        expand_all("__monster__", WordLists(tmp_path))


def test_bad_templates_and_runaway_lists():
    with pytest.raises(PromptListError) as err:
        expand_all("a {red|blue gem", WordLists())
    assert "has no matching" in err.value.user_message
    with pytest.raises(PromptListError) as err:
        expand_all("a red} gem", WordLists())
    assert "has no matching" in err.value.user_message
    with pytest.raises(PromptListError) as err:
        expand_all("__loop__", WordLists(lists={"loop": ("__loop__",)}))
    assert "too deeply" in err.value.user_message
    with pytest.raises(PromptListError) as err:
        expand_all("{a|b|c|d|e|f|g|h|i|j}" * 5, WordLists(), limit=1000)
    assert "more than 1,000 prompts" in err.value.user_message


def test_read_file_txt_csv_and_excel_encoding(tmp_path):
    (tmp_path / "list.txt").write_text("a knight\n", encoding="utf-8")
    (tmp_path / "list.csv").write_bytes("prompt\ncaf\xe9 sign\n".encode("cp1252"))
    (tmp_path / "list.json").write_text("[]")
    assert pl.read_file(tmp_path / "list.txt").rows[0].prompt == "a knight"
    assert pl.read_file(tmp_path / "list.csv").rows[0].prompt == "café sign"
    with pytest.raises(PromptListError) as err:
        pl.read_file(tmp_path / "list.json")
    assert "use a .txt" in err.value.user_message
    with pytest.raises(PromptListError):
        pl.read_file(tmp_path / "missing.txt")


def test_a_thirty_row_csv_makes_thirty_jobs():
    rows = "\n".join(f"sprite {i},,{i},512,512,1" for i in range(30))
    b = pl.expand(pl.parse_csv("prompt,negative,seed,width,height,count\n" + rows))
    assert len(b.jobs) == 30 and len({j.id for j in b.jobs}) == 30 and not b.problems
