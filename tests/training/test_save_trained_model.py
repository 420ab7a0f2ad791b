"""run_common.save_trained_model: the one final save of both runs, with and without LoRA."""

from pathlib import Path
from types import SimpleNamespace

import torch

from hf_rerank.training.run_common import save_trained_model


class Written:
    """A model whose ``save_pretrained`` writes one file named after it."""

    def __init__(self, name):
        self.name = name

    def save_pretrained(self, directory):
        directory.mkdir(parents=True, exist_ok=True)
        (directory / f"{self.name}.bin").write_text(self.name)


class Adapters(torch.nn.Linear, Written):
    """Stands in for a PeftModel: saves its adapters, merges into another model."""

    def __init__(self):
        torch.nn.Linear.__init__(self, 2, 1)
        Written.__init__(self, "adapters")
        self.merged = Written("merged")

    def merge_and_unload(self):
        return self.merged


def trainer(tmp_path, model):
    def save_model(directory):
        Written("trainer-save").save_pretrained(Path(directory))

    return SimpleNamespace(
        model=model,
        args=SimpleNamespace(output_dir=str(tmp_path), process_index=0),
        accelerator=SimpleNamespace(unwrap_model=lambda wrapped: wrapped),
        is_world_process_zero=lambda: True,
        save_model=save_model,
    )


def test_without_lora_the_trainer_saves_and_the_trained_model_is_returned(tmp_path):
    model = torch.nn.Linear(2, 1)
    assert save_trained_model(trainer(tmp_path, model), None, Written("tokenizer")) is model
    assert sorted(p.name for p in tmp_path.iterdir()) == ["trainer-save.bin"]


def test_with_lora_the_adapters_and_the_merged_model_are_saved_and_the_merged_one_returned(tmp_path):
    model, extras = Adapters(), []

    def write_extras(directory, merged):
        extras.append(merged)
        (directory / "modules.json").write_text("{}")

    returned = save_trained_model(trainer(tmp_path, model), {"r": 4}, Written("tokenizer"), write_extras)
    assert returned is model.merged and extras == [model.merged]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["adapter", "merged.bin", "modules.json", "tokenizer.bin"]
    assert sorted(p.name for p in (tmp_path / "adapter").iterdir()) == ["adapters.bin", "tokenizer.bin"]
