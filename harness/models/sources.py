"""Source LLMs: a manifest naming where the weights are, and a frozen loader.

In the `micro` profiles a source is pre-trained here and its manifest points
at the saved directory; in `paper` the manifest points at a hub id or a local
checkpoint (`model_path`). Methods only see `Source.load()`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from harness.errors import HarnessError, first_line
from harness.io import read_json

MANIFEST = "source.json"


@dataclass(frozen=True)
class Source:
    name: str
    arch: str
    model_path: str  # local directory or hub id
    label: str = ""
    trust_remote_code: bool = False  # the checkpoint's own modelling code may run (config opt-in)

    @classmethod
    def from_manifest(cls, path: str | Path) -> "Source":
        path = Path(path)
        if path.is_dir():
            path = path / MANIFEST
        if not path.is_file():
            raise HarnessError(f"missing source checkpoint manifest {path}; build it with `python -m harness source`")
        m = read_json(path)
        model_path = m["model_path"]
        if not Path(model_path).is_absolute() and (path.parent / model_path).exists():
            model_path = str(path.parent / model_path)
        return cls(m["name"], m["arch"], model_path, m.get("label", m["name"]), m.get("trust_remote_code", False))

    def load(self, device="cpu", dtype=None):
        """The source model in eval mode with gradients off (sources are never trained). A
        checkpoint in a layout its architecture's adapter converts (`CHECKPOINTS`: DeepSeekMoE's
        own) is read into the adapter's in-library class, running none of the checkpoint's code."""
        import torch
        from transformers import AutoModelForCausalLM

        local = Path(self.model_path)
        if local.is_absolute() or local.exists():
            if not (local / "config.json").is_file():
                raise HarnessError(f"source {self.name!r}: no checkpoint at {local}")
        dtype = dtype or torch.float32
        try:
            convert = self._converter()
            if convert is not None:
                model = convert[0](self.model_path, convert[1], dtype)
            else:
                model = AutoModelForCausalLM.from_pretrained(self.model_path, dtype=dtype,
                                                             trust_remote_code=self.trust_remote_code)
        except HarnessError:
            raise
        except ValueError as e:
            if "trust_remote_code" not in str(e):
                raise HarnessError(f"source {self.name!r}: cannot load {self.model_path}: {first_line(e)}") from None
            raise HarnessError(f"source {self.name!r}: {self.model_path} ships its own model code; to run it, set "
                               f"`trust_remote_code: true` under sources.{self.name} in the config") from None
        except Exception as e:  # noqa: BLE001 - a truncated safetensors file, a corrupt config.json, no hub access
            raise HarnessError(f"source {self.name!r}: cannot load {self.model_path} ({type(e).__name__}: "
                               f"{first_line(e)}); if it is a local checkpoint, it is corrupt or incomplete") from None
        model.to(device).eval().requires_grad_(False)
        return model

    def _converter(self):
        """(load function, config dict) when the checkpoint's model type is one the arch's adapter converts."""
        from transformers import PretrainedConfig

        from harness.models.archs import adapter
        from harness.api.plugins import load_target

        table = getattr(adapter(self.arch), "CHECKPOINTS", {})
        if not table:
            return None
        cfg, _ = PretrainedConfig.get_config_dict(self.model_path)
        target = table.get(cfg.get("model_type"))
        return None if target is None else (load_target("checkpoint converter", self.arch, target), cfg)
