"""Generated tables land between their markers and nowhere else."""

from __future__ import annotations

from pathlib import Path

from benchmarks.publish import markers, publish, replace_block


def test_a_block_is_replaced_between_its_markers_and_the_prose_is_kept(tmp_path: Path) -> None:
    doc = tmp_path / "RESULTS.md"
    start, end = markers("t")
    doc.write_text(f"# Title\n\nprose before\n{start}\nold table\n{end}\nprose after\n")
    assert replace_block(doc, "t", "| a |\n|---|\n| 1 |\n")
    assert (
        doc.read_text()
        == f"# Title\n\nprose before\n{start}\n| a |\n|---|\n| 1 |\n{end}\nprose after\n"
    )
    # A re-run with the same text changes nothing; a new text replaces, never duplicates.
    assert replace_block(doc, "t", "| a |\n|---|\n| 1 |")
    assert replace_block(doc, "t", "new")
    assert doc.read_text().count("new") == 1 and "old table" not in doc.read_text()


def test_missing_or_misordered_markers_leave_the_file_alone(tmp_path: Path) -> None:
    doc = tmp_path / "README.md"
    start, end = markers("t")
    for text in ("no markers\n", f"{end}\nx\n{start}\n", f"{start}\nonly a start\n"):
        doc.write_text(text)
        assert not replace_block(doc, "t", "table")
        assert doc.read_text() == text
    assert publish({(tmp_path / "absent.md", "t"): "x"}) == {"absent.md#t": False}


def test_the_many_variant_table_has_a_row_per_variant_count() -> None:
    from benchmarks import bench_many_variants as bench

    figures: dict[str, float | int | str] = {}
    for n in bench.VARIANT_COUNTS:
        figures[f"n{n}_reference_clicks_mean"] = 40_000.0 + n
        for name in ("legacy", "thompson", "uniform"):
            figures[f"n{n}_{name}_over_reference"] = f"{name}-{n}"
    table = bench.markdown(figures).splitlines()
    assert len(table) == 2 + len(bench.VARIANT_COUNTS)
    assert table[-1] == "| 200 | 40,200 | legacy-200 | thompson-200 | uniform-200 |"
