"""Helpers for testing policies and engines: policy trees as data, Hypothesis strategies, synthetic policies.

Nothing here is the CMAP policy. Generated and synthetic policies are named as such
everywhere they appear.
"""

from .synthetic import synthetic_policy
from .trees import PolicyTree, bundled_tree, read_tree, write_tree

__all__ = ["PolicyTree", "bundled_tree", "read_tree", "synthetic_policy", "write_tree"]
