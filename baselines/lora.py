"""LoRA fine-tuning of the student from its own initialisations: the reference rows of the
parametric-knowledge-transfer table (LaTen paper, Table 1). `init: gaussian` is the "random
initialisation" row (A ~ N(0, 1/r), B = 0); `init: pissa` starts from the top-r singular
triplets of each weight (PEFT's PiSSA), the LoRA a model derives from itself.

The adapter is merged into the weights after SFT, so the saved student is a plain Llama.
"""

from __future__ import annotations

from harness.models import lora
from harness.api.method import resolve_options

DEFAULTS = {**lora.DEFAULTS, "init": "gaussian"}


class LoRA:
    label = "LoRA"

    def adapt(self, student, task, ctx):
        o = resolve_options(self.name, DEFAULTS, ctx)
        return lora.attach(student, o["rank"], o["alpha"], o["dropout"], o["modules"], o["init"])
