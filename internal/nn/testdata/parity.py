"""PyTorch reference for internal/nn's training step (test-only).

Reads a directory written by parity_test.go:
  model/            Hugging Face model directory (config.json, model.safetensors)
  adapter.safetensors  the Go side's initial adapter tensors (PEFT names), if any
  run.json          {"method", "lora_alpha", "lora_rank", "num_last_layers",
                     "tokens": [[...]], "targets": [[...]], "lengths": [...],
                     "scale", "lr", "weight_decay", "steps"}
runs `steps` steps of: zero grads, sum of token cross-entropies (targets >= 0)
times scale, backward, torch.optim.AdamW; and writes to stdout JSON
{"losses": [summed loss per step], "grads": {name: flat step-1 gradient}}.

The model semantics are those of internal/model/testdata/torchref.py; this
file adds LoRA (PEFT: y += scale * B(A(x)), dropout 0), IA3 (PEFT: k_proj,
v_proj outputs and the down_proj input scaled by ia3_l) and Vanilla (the
last N layers' weights and model.norm.weight trained) around it.
"""

import json
import os
import sys

import torch

here = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(here, "..", "..", "model", "testdata"))
import torchref  # noqa: E402

PEFT = "base_model.model."


class AdaptedModel(torchref.Model):
    def __init__(self, config, weights, run, adapter):
        super().__init__(config, weights)
        self.method = run["method"]
        self.adapter = adapter
        self.scaling = 0.0
        if self.method == "lora":
            self.scaling = run["lora_alpha"] / run["lora_rank"]

    def linear(self, name, x):
        a = self.adapter
        if self.method == "lora" and PEFT + name + ".lora_A.weight" in a:
            A = a[PEFT + name + ".lora_A.weight"]
            B = a[PEFT + name + ".lora_B.weight"]
            return super().linear(name, x) + (x @ A.T @ B.T) * self.scaling
        if self.method == "tfew" and PEFT + name + ".ia3_l" in a:
            l = a[PEFT + name + ".ia3_l"]
            if name.endswith("down_proj"):
                return super().linear(name, x * l)  # l is [1, in]
            return super().linear(name, x) * l.reshape(-1)  # l is [out, 1]
        return super().linear(name, x)


def main():
    d = sys.argv[1]
    with open(os.path.join(d, "run.json")) as f:
        run = json.load(f)
    config, weights = torchref.load_dir(os.path.join(d, "model"))
    adapter = {}
    ap = os.path.join(d, "adapter.safetensors")
    if os.path.exists(ap):
        adapter = torchref.read_safetensors(ap)
    model = AdaptedModel(config, weights, run, adapter)
    if run["method"] == "vanilla":
        L = config["num_hidden_layers"]
        first = L - (run["num_last_layers"] or L)
        params = {}
        for name, t in model.w.items():
            train = name == "model.norm.weight"
            if name.startswith("model.layers."):
                train = int(name.split(".")[2]) >= first
            if train:
                t.requires_grad_(True)
                params[name] = t
    else:
        params = adapter
        for t in params.values():
            t.requires_grad_(True)
    names = sorted(params)
    opt = torch.optim.AdamW([params[n] for n in names], lr=run["lr"], betas=(0.9, 0.999), eps=1e-8,
                            weight_decay=run["weight_decay"])
    ids = torch.tensor(run["tokens"], dtype=torch.long)
    targets = torch.tensor(run["targets"], dtype=torch.long)
    B, T = ids.shape
    mask = torch.zeros(B, T, dtype=torch.long)
    for b, n in enumerate(run["lengths"]):
        mask[b, :n] = 1
    losses, grads = [], {}
    for step in range(run["steps"]):
        opt.zero_grad()
        logits = model.forward(ids, mask)
        sel = targets.reshape(-1) >= 0
        loss = torch.nn.functional.cross_entropy(
            logits.reshape(B * T, -1)[sel], targets.reshape(-1)[sel], reduction="sum")
        (loss * run["scale"]).backward()
        losses.append(loss.item())
        if step == 0:
            grads = {n: params[n].grad.reshape(-1).tolist() for n in names}
        opt.step()
    json.dump({"losses": losses, "grads": grads}, sys.stdout)


if __name__ == "__main__":
    main()
