"""The terminal table layout shared by compare and eval."""

from latentprobe.text_table import align_columns


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
