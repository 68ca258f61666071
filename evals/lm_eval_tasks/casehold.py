"""Prompt function of casehold.yaml (lm-eval resolves `!function casehold.doc_to_text` here)."""

MASK = "<HOLDING>"


def doc_to_text(doc: dict) -> str:
    """The citing passage up to the masked holding: "... 123 F.3d 456 (2d Cir. 1999) (" """
    return doc["context"].split(MASK, 1)[0].rstrip()
