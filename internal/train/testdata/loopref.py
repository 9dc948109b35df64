"""PyTorch reference for internal/train's optimisation loop (test-only).

Reads a directory written by loopref_test.go:
  model/               Hugging Face model directory
  init.safetensors     the LoRA adapter tensors before training (PEFT names)
  <adapter dirs>/      adapters written by Go (LoRA, IA3, vanilla)
  run.json             {"lora_alpha", "lora_rank", "lr", "warmup", "total",
                        "max_norm", "steps": [{"tokens", "targets", "lengths"}],
                        "eval": {"tokens", "targets", "lengths"},
                        "adapters": [directory names]}

Training, as Hugging Face's Trainer does it: per step, zero grads, mean
cross-entropy over the batch's loss-bearing tokens, backward,
torch.nn.utils.clip_grad_norm_(max_norm), torch.optim.AdamW (betas 0.9,
0.999, eps 1e-8, no weight decay), then a LambdaLR step with
get_linear_schedule_with_warmup's lambda. LoRA as PEFT computes it
(y += alpha/r * B(A(x)), dropout 0), over torchref.py's model.

Then, independently, each adapter directory is loaded with
torchref.AdapterModel (PEFT's format and semantics, Gantry's vanilla
format) and its summed loss on the "eval" batch computed.

Prints {"losses": [mean loss per step], "lrs": [...], "eval_losses": [...]}.
"""

import json
import os
import sys

import torch

here = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(here, "..", "..", "model", "testdata"))
import torchref  # noqa: E402

PEFT = "base_model.model."


class LoRAModel(torchref.Model):
    def __init__(self, config, weights, adapter, scaling):
        super().__init__(config, weights)
        self.adapter = adapter
        self.scaling = scaling

    def linear(self, name, x):
        a = self.adapter
        if PEFT + name + ".lora_A.weight" in a:
            A = a[PEFT + name + ".lora_A.weight"]
            B = a[PEFT + name + ".lora_B.weight"]
            return super().linear(name, x) + (x @ A.T @ B.T) * self.scaling
        return super().linear(name, x)


def batch_tensors(b):
    ids = torch.tensor(b["tokens"], dtype=torch.long)
    targets = torch.tensor(b["targets"], dtype=torch.long)
    B, T = ids.shape
    mask = torch.zeros(B, T, dtype=torch.long)
    for i, n in enumerate(b["lengths"]):
        mask[i, :n] = 1
    return ids, targets, mask


def summed_loss(model, b):
    ids, targets, mask = batch_tensors(b)
    B, T = ids.shape
    logits = model.forward(ids, mask)
    sel = targets.reshape(-1) >= 0
    loss = torch.nn.functional.cross_entropy(
        logits.reshape(B * T, -1)[sel], targets.reshape(-1)[sel], reduction="sum")
    return loss, int(sel.sum())


def main():
    d = sys.argv[1]
    with open(os.path.join(d, "run.json")) as f:
        run = json.load(f)
    config, weights = torchref.load_dir(os.path.join(d, "model"))
    params = torchref.read_safetensors(os.path.join(d, "init.safetensors"))
    for t in params.values():
        t.requires_grad_(True)
    model = LoRAModel(config, weights, params, run["lora_alpha"] / run["lora_rank"])
    names = sorted(params)
    opt = torch.optim.AdamW([params[n] for n in names], lr=run["lr"], betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0)
    warmup, total = run["warmup"], run["total"]

    def lr_lambda(s):
        if s < warmup:
            return float(s) / float(max(1, warmup))
        return max(0.0, float(total - s) / float(max(1, total - warmup)))

    sched = torch.optim.lr_scheduler.LambdaLR(opt, lr_lambda)
    losses, lrs = [], []
    for b in run["steps"]:
        opt.zero_grad()
        loss, n = summed_loss(model, b)
        mean = loss / n
        mean.backward()
        torch.nn.utils.clip_grad_norm_([params[k] for k in names], run["max_norm"])
        lrs.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
        losses.append(mean.item())

    eval_losses = []
    for name in run["adapters"]:
        saved = torchref.AdapterModel(config, weights, os.path.join(d, name))
        with torch.no_grad():
            loss, _ = summed_loss(saved, run["eval"])
        eval_losses.append(loss.item())
    json.dump({"losses": losses, "lrs": lrs, "eval_losses": eval_losses}, sys.stdout)


if __name__ == "__main__":
    main()
