"""river's HalfSpaceTrees, pickled as its masses only: the job snapshots every key's state.

Pickling the model itself wrote all 5,110 node objects of its 10 trees: about 5 ms and 170 kB
per key at every snapshot, which grows with the keys and took a tenth of the job's CPU with
16. The trees' shape (each node's feature and split point) is drawn from the seeded rng when
the first reading arrives and never changes after, so a restore draws it again from the same
seed and puts the masses back: the same model, scoring alike, from about 80 kB of integers.
"""

from __future__ import annotations

from array import array

from river.anomaly import HalfSpaceTrees


class CompactHST(HalfSpaceTrees):
    def __getstate__(self) -> dict:
        built = bool(self.trees)
        nodes = [n for tree in self._tree_nodes for n in tree]
        return {
            "params": {k: v for k, v in self._get_params().items() if k != "limits"},
            "limits": dict(self.limits),  # the features of the first reading: they shaped the trees
            "built": built,
            "counter": self.counter,
            "first_window": self._first_window,
            "l": array("q", [n.l_mass for n in nodes]),
            "r": array("q", [n.r_mass for n in nodes]),
        }

    def __setstate__(self, state: dict) -> None:
        self.__init__(**state["params"], limits=state["limits"])
        if state["built"]:  # the same draw from the same seed, then the masses back
            super().learn_one(dict.fromkeys(state["limits"], 0.5))
            nodes = [n for tree in self._tree_nodes for n in tree]
            if len(nodes) != len(state["l"]):
                raise ValueError("HalfSpaceTrees snapshot: the trees drawn again differ from the snapshot's")
            for n, lm, rm in zip(nodes, state["l"], state["r"], strict=True):
                n.l_mass, n.r_mass = lm, rm
        self.counter, self._first_window = state["counter"], state["first_window"]
