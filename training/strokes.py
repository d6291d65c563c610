"""How people draw the ten digits: stroke templates (polylines and arcs), one per style.

    from training import strokes
    strokes.STYLES["7"]        # {"plain": [...], "crossbar": [...], ...}: each style a list of strokes

A stroke is an (M, 2) float array of points (x, y) in a box one unit high (y grows downwards, as
on a canvas; digits are about 0.6 wide). scikit-learn's digits nearly all share one style per digit
(a 7 with a crossbar, a 1 with a flag and a base); these are the styles a person draws with a mouse.
`training/synthetic.py` jitters, slants and renders them. A few styles are kept for the held-out
measurement only (HELD_OUT_STYLES, never in training): they show whether the model generalizes to a
shape it never saw rather than just to new jitter.
"""
from __future__ import annotations

import numpy as np


def arc(cx: float, cy: float, rx: float, ry: float, start: float, end: float, points: int = 14) -> np.ndarray:
    """An elliptic arc from `start` to `end` degrees (0 = right, 90 = down: clockwise on screen)."""
    angles = np.radians(np.linspace(start, end, points))
    return np.stack([cx + rx * np.cos(angles), cy + ry * np.sin(angles)], axis=1)


def line(*points) -> np.ndarray:
    return np.asarray(points, dtype=np.float64)


def joined(*parts) -> np.ndarray:
    """One stroke through several pieces, drawn without lifting the pen."""
    return np.concatenate([np.asarray(part, dtype=np.float64) for part in parts])


def _styles() -> dict[str, dict[str, list[np.ndarray]]]:
    return {
        "0": {"oval": [arc(0.3, 0.5, 0.3, 0.5, -90, 270, 24)],
              "overlap": [arc(0.3, 0.5, 0.28, 0.5, -60, 320, 24)],
              "narrow": [arc(0.3, 0.5, 0.2, 0.5, -100, 265, 24)]},
        "1": {"stem": [line((0.3, 0.0), (0.3, 1.0))],
              "flag": [line((0.08, 0.22), (0.32, 0.0), (0.32, 1.0))],
              "flag_base": [line((0.08, 0.22), (0.32, 0.0), (0.32, 1.0)), line((0.05, 1.0), (0.6, 1.0))]},
        "2": {"swan": [joined(arc(0.3, 0.3, 0.28, 0.3, 195, 395, 12), line((0.0, 1.0), (0.62, 1.0)))],
              "curly": [joined(arc(0.3, 0.3, 0.28, 0.3, 195, 395, 12), line((0.05, 0.92)),
                               arc(0.12, 0.9, 0.1, 0.08, 180, 420, 8), line((0.62, 1.0)))],
              "flat": [joined(arc(0.32, 0.27, 0.28, 0.27, 190, 360, 10), line((0.6, 0.35), (0.02, 1.0), (0.6, 0.98)))]},
        "3": {"round": [joined(arc(0.3, 0.25, 0.27, 0.25, 200, 450, 12), arc(0.3, 0.74, 0.3, 0.26, 270, 520, 12))],
              "flat_top": [joined(line((0.05, 0.0), (0.58, 0.0), (0.25, 0.42)),
                                  arc(0.3, 0.71, 0.3, 0.29, 260, 505, 12))],
              "two_strokes": [arc(0.3, 0.25, 0.27, 0.25, 200, 450, 12), arc(0.3, 0.74, 0.3, 0.26, 270, 520, 12)]},
        "4": {"open": [line((0.1, 0.0), (0.04, 0.62), (0.62, 0.62)), line((0.46, 0.05), (0.46, 1.0))],
              "closed": [line((0.46, 1.0), (0.46, 0.0), (0.0, 0.66), (0.62, 0.66))],
              "closed_two": [line((0.46, 0.0), (0.0, 0.66), (0.62, 0.66)), line((0.46, 0.2), (0.46, 1.0))]},
        "5": {"one_stroke": [joined(line((0.56, 0.0), (0.1, 0.0), (0.06, 0.45)),
                                    arc(0.3, 0.69, 0.3, 0.3, 225, 490, 12))],
              "flag_last": [joined(line((0.08, 0.0), (0.05, 0.45)), arc(0.3, 0.69, 0.3, 0.3, 225, 490, 12)),
                            line((0.08, 0.0), (0.58, 0.0))]},
        "6": {"loop": [joined(line((0.52, 0.02), (0.3, 0.16), (0.12, 0.38)),
                              arc(0.31, 0.71, 0.27, 0.28, 185, 540, 18))],
              "straight": [joined(line((0.45, 0.0), (0.05, 0.7)), arc(0.31, 0.72, 0.27, 0.27, 175, 530, 18))]},
        "7": {"plain": [line((0.0, 0.0), (0.6, 0.0), (0.2, 1.0))],
              "crossbar": [line((0.0, 0.0), (0.6, 0.0), (0.2, 1.0)), line((0.15, 0.52), (0.55, 0.52))],
              "hook": [line((0.0, 0.14), (0.0, 0.0), (0.6, 0.0), (0.25, 1.0))],
              "steep": [line((0.02, 0.02), (0.6, 0.0), (0.38, 1.0))]},
        "8": {"two_loops": [arc(0.3, 0.25, 0.22, 0.25, 0, 360, 16), arc(0.3, 0.74, 0.28, 0.26, 0, 360, 16)],
              "figure": [joined(arc(0.3, 0.25, 0.24, 0.25, 0, -270, 14), arc(0.3, 0.74, 0.28, 0.26, -90, 270, 18),
                                line((0.54, 0.25)))]},
        "9": {"straight": [joined(arc(0.3, 0.28, 0.27, 0.28, 0, 360, 18), line((0.55, 1.0)))],
              "curved": [joined(arc(0.3, 0.28, 0.27, 0.28, 0, 360, 18), line((0.52, 0.85), (0.35, 1.0), (0.08, 0.94)))],
              "stick": [joined(arc(0.3, 0.28, 0.27, 0.28, 10, 370, 18), line((0.45, 1.0)))]},
    }


def _held_out_styles() -> dict[str, dict[str, list[np.ndarray]]]:
    """Shapes people also draw that training never sees."""
    return {
        "1": {"serif_base": [line((0.15, 0.15), (0.32, 0.0), (0.32, 1.0)), line((0.12, 1.0), (0.52, 1.0))]},
        "4": {"tall_open": [line((0.05, 0.0), (0.05, 0.55), (0.64, 0.55)), line((0.5, 0.0), (0.5, 1.0))]},
        "7": {"curved_stem": [joined(line((0.0, 0.0), (0.6, 0.0)), arc(0.0, 0.0, 0.6, 1.0, 0, 72, 8))]},
        "9": {"round_tail": [joined(arc(0.3, 0.26, 0.26, 0.26, 0, 360, 18), arc(0.05, 0.3, 0.5, 0.62, 0, 80, 8))]},
    }


STYLES = _styles()
HELD_OUT_STYLES = _held_out_styles()


def style_names(styles: dict) -> set[tuple[str, str]]:
    """Every (digit, style) pair of a table of styles."""
    return {(digit, name) for digit, named in styles.items() for name in named}
