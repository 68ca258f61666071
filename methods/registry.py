"""The method table: name -> "module:Class" (or a variant with fixed options).

Adding a method is one file in `methods/` or `baselines/` plus one line here.
Names are the workflow's `{method}` wildcard and the reports' row keys.
Nothing is imported until a stage asks for the method.
"""

METHODS = {
    "scratch": "baselines.scratch:Scratch",
}
