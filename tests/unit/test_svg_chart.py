"""The notebooks' bar charts as SVG: well-formed, every bar and marker where its value puts it, labels escaped."""

from __future__ import annotations

import xml.etree.ElementTree as ElementTree

import pytest

from spark_etl.publishing import svg_chart

SVG = "{http://www.w3.org/2000/svg}"


def parsed(svg: str) -> ElementTree.Element:
    root = ElementTree.fromstring(svg)  # raises on anything a browser would not parse as XML
    assert root.tag == f"{SVG}svg"
    return root


def bars(root: ElementTree.Element) -> list[dict[str, float]]:
    return [
        {name: float(rect.attrib[name]) for name in ("x", "y", "width", "height")}
        for rect in root.iter(f"{SVG}rect")
        if rect.attrib.get("fill") == svg_chart.BAR_COLOUR
    ]


def texts(root: ElementTree.Element) -> list[str]:
    return [text.text or "" for text in root.iter(f"{SVG}text")]


@pytest.mark.parametrize(
    ("low", "high", "expected"),
    [
        (0, 87, [0, 20, 40, 60, 80, 100]),
        (0, 100, [0, 20, 40, 60, 80, 100]),
        (0, 0.37, [0, 0.1, 0.2, 0.3, 0.4]),
        (0, 1, [0, 0.2, 0.4, 0.6, 0.8, 1.0]),
        (-3, 10, [-5, 0, 5, 10]),
        (0, 0, [0, 1]),  # nothing to scale: an axis of one unit
        (0, 7_300_000, [0, 2_000_000, 4_000_000, 6_000_000, 8_000_000]),
    ],
)
def test_ticks_are_round_steps_covering_the_values(low: float, high: float, expected: list[float]) -> None:
    assert svg_chart.nice_ticks(low, high) == pytest.approx(expected)


def test_tick_labels_have_separators_and_the_decimals_the_step_needs() -> None:
    assert svg_chart.tick_label(4_000_000, [0, 2_000_000]) == "4,000,000"
    assert svg_chart.tick_label(0.30000000000000004, [0, 0.1]) == "0.3"
    assert svg_chart.tick_label(0.25, [0, 0.05]) == "0.25"


def test_bars_stand_on_the_baseline_with_heights_in_proportion() -> None:
    root = parsed(svg_chart.bar_chart(["a", "b", "c"], [10, 0, 87], "t", "x", "y"))
    drawn = bars(root)
    assert len(drawn) == 3
    bottom = svg_chart.HEIGHT - svg_chart.BOTTOM
    plot_height = bottom - svg_chart.TOP
    # the axis runs 0 to 100 (nice_ticks), so a value v is v / 100 of the plot's height
    assert [bar["height"] for bar in drawn] == pytest.approx([0.10 * plot_height, 0, 0.87 * plot_height], abs=0.1)
    assert {round(bar["y"] + bar["height"], 1) for bar in drawn} == {bottom}
    assert drawn[0]["x"] < drawn[1]["x"] < drawn[2]["x"]
    assert {"t", "x", "y", "a", "b", "c", "0", "100"} <= set(texts(root))


def test_the_line_breaks_at_unknown_values_and_marks_each_known_one() -> None:
    root = parsed(
        svg_chart.bar_chart(
            ["m1", "m2", "m3", "m4", "m5"], [5, 6, 7, 8, 9], "t", "x", "y", secondary=[0.1, None, 0.3, 0.4, None],
            secondary_label="mean is_late",
        )
    )  # fmt: skip
    assert len(list(root.iter(f"{SVG}circle"))) == 3
    (line,) = root.iter(f"{SVG}polyline")  # 0.1 stands alone; 0.3 and 0.4 are joined
    assert len(line.attrib["points"].split()) == 2
    assert "mean is_late" in texts(root)


def test_many_labels_are_turned_and_text_is_escaped() -> None:
    labels = [f"<{number}&>" for number in range(svg_chart.ROTATE_AFTER + 1)]
    root = parsed(svg_chart.bar_chart(labels, list(range(len(labels))), 'a "title" <b>', "x", "y"))
    turned = [text for text in root.iter(f"{SVG}text") if text.text in labels]
    assert len(turned) == len(labels) and all("rotate(-45" in text.attrib["transform"] for text in turned)
    assert 'a "title" <b>' in texts(root)


def test_no_rows_draw_the_axes_and_no_bar() -> None:
    root = parsed(svg_chart.bar_chart([], [], "empty", "x", "y", secondary=[]))
    assert bars(root) == [] and list(root.iter(f"{SVG}circle")) == []
    assert "empty" in texts(root)
