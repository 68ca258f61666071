"""The method table: name -> "module:Class", or a variant with fixed options.

Adding a method is one file in `methods/` or `baselines/` plus one line here; a composition
(`{"compose": [a, b]}`, harness/api/compose.py) takes each hook from one of the methods it names.
Names are the workflow's `{method}` wildcard and the reports' row keys; a
variant (same class, other options) is its own row, e.g. an ablation. A
variant reads its family's `method_options` (those of the entry with the same
class and no fixed options) under its own. Nothing is imported until a stage
asks for the method.
"""

MASA = "methods.masa:MASA"
MASA_DOMAINS = ("encyclopedia", "code", "math_science", "law", "medicine")
REDPAJAMA_SUBSETS = {"arxiv": "ArXiv", "book": "Books", "c4": "C4", "common_crawl": "CommonCrawl",
                     "github": "GitHub", "stackexchange": "StackExchange", "wikipedia": "Wikipedia"}

METHODS = {
    "scratch": "baselines.scratch:Scratch",
    "distill": "baselines.distill:Distillation",
    # positive and null controls (docs/signal.md): the twin copied whole, all but its FFNs, its FFNs only;
    # Scratch with another init stream
    "oracle": {"target": "baselines.oracle:Oracle", "label": "Oracle"},
    "oracle-no-ffn": {"target": "baselines.oracle:Oracle", "options": {"copy": "no-ffn"},
                      "label": "Oracle (all but FFN)"},
    "oracle-ffn": {"target": "baselines.oracle:Oracle", "options": {"copy": "ffn"}, "label": "Oracle-FFN"},
    "scratch-aa": {"target": "baselines.scratch:ScratchReinit", "label": "Scratch (A/A)"},
    # the knowledge map (signal.map): one part of the twin at a time, the rest Scratch's init
    **{f"oracle-{part}": {"target": "baselines.oracle:Oracle", "options": {"copy": part}, "label": label}
       for part, label in (("embed", "Twin: embeddings + head"), ("attention", "Twin: attention"),
                           ("norms", "Twin: norms"), ("ffn-embed", "Twin: FFNs + embeddings + head"),
                           ("ffn-spectrum", "Twin: FFN spectrum, random vectors"))},
    "pruning-eep": "baselines.eep:PruningEEP",
    "weight-selection": {"target": "baselines.weight_selection:WeightSelection", "label": "Weight Selection"},
    # prune, then distill (Minitron; docs/methods.md): EEP's search and dense student, KD pre-training
    "prune-distill": {"compose": ["pruning-eep", "distill"], "label": "Pruning-EEP + Distillation"},
    # The parametric-knowledge-transfer table (LaTen paper, Table 1): SFT of the Scratch student
    "scratch-nosft": {"target": "baselines.scratch:Scratch", "finetune": False, "label": "Student (no SFT)"},
    "lora": {"target": "baselines.lora:LoRA", "label": "LoRA (random init)"},
    "lora-pissa": {"target": "baselines.lora:LoRA", "options": {"init": "pissa"}, "label": "LoRA (PiSSA init)"},
    "seeking": {"target": "baselines.seeking:Seeking", "label": "Seeking"},
    "laten": {"target": "baselines.laten:LaTen", "label": "LaTen + SFT"},
    "laten-nosft": {"target": "baselines.laten:LaTen", "finetune": False, "label": "LaTen (no SFT)"},
    "semalign": {"target": "baselines.semalign:SemAlign", "label": "SemAlign"},
    "semalign-v2": {"target": "baselines.semalign:SemAlign", "options": {"version": 2, "schedule": "before"},
                    "label": "SemAlign v2"},
    "masa": {"target": MASA, "label": "MASA"},
    # Table 4 ablations
    "masa-no-spectral": {"target": MASA, "options": {"spectral_weight": 0.0}, "label": "w.o. Spectral Alignment"},
    "masa-no-scaling": {"target": MASA, "options": {"scaling": "truncate"}, "label": "w.o. Adaptive Scaling"},
    # Table 5: M/W ratio
    **{f"masa-ratio{p}": {"target": MASA, "options": {"ratio": p / 100}, "label": f"{p}%"} for p in (3, 12, 23, 40)},
    # the other reading of the genes' size (L45, L65): all gene matrices together 0.17 % of the
    # source, or 11.8M parameters (methods/masa.py GENE_SIZES)
    "masa-genes-0.17pct": {"target": MASA, "options": {"size": "fraction:0.0017"}, "label": "0.17 % of source (L45)"},
    "masa-genes-11.8M": {"target": MASA, "options": {"size": "total:11.8e6"}, "label": "11.8M in all (L45)"},
    # Figure 4: alignment data from one domain
    **{f"masa-domain-{d}": {"target": MASA, "options": {"domain": d}, "label": d} for d in MASA_DOMAINS},
    # ... and on RedPajama-1T's subsets (the paper profile's corpus domains; Figure 4's caption
    # names Wikipedia, ArXiv and GitHub)
    **{f"masa-domain-{d}": {"target": MASA, "options": {"domain": d}, "label": label}
       for d, label in REDPAJAMA_SUBSETS.items()},
}
