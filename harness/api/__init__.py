"""The contracts plugins implement and the registries that find them: the `Method` protocol
(`method`), one registry mechanism for every axis that grows (`plugins.Registry`), the method
registry (`registry`), compositions (`compose`) and reading a method's hooks from its source
without importing it (`plugin_source`). No torch at module level: planning reads these."""
