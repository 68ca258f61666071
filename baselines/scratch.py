"""Scratch: a randomly initialised student, no knowledge inherited (paper section 4.1).

It implements no hook: random init, plain cross-entropy pre-training and an
unchanged model before SFT are the `Method` defaults.
"""


class Scratch:
    label = "Scratch"
