"""Applications built on the operations of ``retrainer.lifecycle``: the demo, the replay of a
stream through the loop, the comparison of families, and backup and restore."""
