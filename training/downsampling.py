"""How many 2x2 poolings a network needs so the features it flattens stay small, for any input size.

Both network files (`model_torch.py`, `model_keras.py`) ask this one function, so the two
frameworks always build the same number of stages. Pure Python: no framework is imported.

    pooled_sizes(8, 8)      -> [(4, 4)]                     the digits: one pooling, as ever
    pooled_sizes(32, 32)    -> [(16, 16), (8, 8)]
    pooled_sizes(4, 256)    -> [(2, 128), (1, 64)]
"""
from __future__ import annotations

MAX_FLATTEN_CELLS = 64  # positions (H x W) left after the last pooling; 8x8 and 16x16 inputs need one pooling


def pooled_sizes(height: int, width: int) -> list[tuple[int, int]]:
    """(H, W) after each 2x2 pooling (floor, as both frameworks' 'valid' pooling): always one, more while large."""
    sizes = [(height // 2, width // 2)]
    while sizes[-1][0] * sizes[-1][1] > MAX_FLATTEN_CELLS and min(sizes[-1]) >= 2:
        h, w = sizes[-1]
        sizes.append((h // 2, w // 2))
    return sizes
