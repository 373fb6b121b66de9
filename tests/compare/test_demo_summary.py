"""The demo's printed summary: the smallest-fit table, the slopes and plateau, constructions."""

from robustlaw.cli.demo import SLOPE_COLUMNS, SUMMARY_COLUMNS, summary_text


def _table_after(lines, header_start):
    """The lines of the table whose header row starts with ``header_start``."""
    at = next(i for i, line in enumerate(lines) if line.startswith(header_start))
    end = next((i for i in range(at, len(lines)) if not lines[i].strip()), len(lines))
    return [line.split() for line in lines[at:end]]


def test_summary_prints_the_smallest_fit_table_and_the_slopes(rows):
    lines = summary_text(rows).splitlines()
    assert "only a certified value under its floor" in " ".join(lines[:6])
    table = _table_after(lines, "n ")
    assert table[0] == list(SUMMARY_COLUMNS)
    assert len(table) == 1 + 2 * (6 + 4)
    first = dict(zip(SUMMARY_COLUMNS[:7], table[1], strict=False))  # "BS at p" has spaces
    assert (first["method"], first["p"], first["lip_certified"]) == ("dense", "8", "5.657")
    assert table[1][-5:-2] == ["BS", "at", "p"]  # the floor, then ratio and contradicts
    assert all(row[-1] == "False" for row in table[1:])  # contradicts
    slopes = _table_after(lines, "n    d    role")
    assert slopes[0] == list(SLOPE_COLUMNS)
    by_role = {(r[0], r[2]): r for r in slopes[1:]}
    assert set(by_role) == {(n, role) for n in ("16", "32", "all")
                            for role in ("search", "first-fit")}  # fmt: skip
    assert by_role[("all", "search")][3] == "-0.5"
    assert by_role[("all", "first-fit")][3] == "0"
    assert "Explicit constructions" in "\n".join(lines)


def test_summary_skips_constructions_when_there_are_none(law):
    text = summary_text(law.rows(built=False))
    assert "Explicit constructions" not in text
    assert "Log-log slope of the smallest certified constant" in text
