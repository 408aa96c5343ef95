"""The terminal table layout shared by compare and eval."""

from latentprobe.text_table import align_columns, wrap


def test_columns_share_widths_across_blocks_with_a_rule_between():
    lines = align_columns([[["", "run-a", "b"]], [["test/acc", "0.9", "0.85"], ["x", "1", "2"]]])
    assert lines == [
        "          run-a     b",
        "--------  -----  ----",
        "test/acc    0.9  0.85",
        "x             1     2",
    ]


def test_no_rows_no_lines():
    assert align_columns([[]]) == []


def test_a_wide_table_is_split_into_panels_that_repeat_the_row_names():
    header = ["", *(f"run-{i}" for i in range(6))]
    rows = [["metric/a", *(f"0.{i}000" for i in range(6))], ["b", *("1" for _ in range(6))]]
    lines = align_columns([[header], rows], width=30)
    assert max(map(len, lines)) <= 30
    panels = "\n".join(lines).split("\n\n")
    assert len(panels) == 3
    assert panels[1].splitlines() == [
        "           run-2   run-3",
        "--------  ------  ------",
        "metric/a  0.2000  0.3000",
        "b              1       1",
    ]
    assert all(p.splitlines()[2].startswith("metric/a") for p in panels)
    # without a width (or 0) it is one table, as wide as it takes
    assert len(align_columns([[header], rows])) == len(align_columns([[header], rows], width=0)) == 4


def test_spans_keep_columns_together():
    header = ["", "a", "diff", "b", "diff"]
    rows = [["x", "0.5000", "+0.1000", "0.6000", "+0.2000"]]
    lines = align_columns([[header], rows], width=30, spans=[2, 2])
    assert [line.split() for line in lines if line and not line.startswith("-")] == [
        ["a", "diff"],
        ["x", "0.5000", "+0.1000"],
        ["b", "diff"],
        ["x", "0.6000", "+0.2000"],
    ]


def test_wrap_indents_later_lines():
    assert wrap("same in every run: a=1, b=2, c=3", 20) == ["same in every run:", "  a=1, b=2, c=3"]
    assert wrap("one long line", None) == ["one long line"]
