"""Test-only PyTorch reference of the Hugging Face modeling semantics of
Llama, Mistral and Qwen2 causal LMs, reading a model directory's
safetensors by hand (no transformers or safetensors packages needed).

Importable: ``load_dir(path)`` returns (config, weights); ``Model(config,
weights)`` has ``forward(input_ids, attention_mask=None)`` returning logits
[B, T, V]. Linear layers go through ``Model.linear(name, x)`` so a subclass
can add adapters (LoRA, IA3) around them.

As a script it reads {"input_ids": [[...]], "attention_mask": [[...]]}
(or {"requests": [such objects]}) from --input, writes the logits as
little-endian float32 [B, T, V] (one after another) to --output, and prints
{"loss": ..., "losses": [...]}, the mean next-token cross-entropy over real
tokens of each request, as JSON. --adapter DIR applies a PEFT LoRA/IA3 or
Gantry vanilla adapter.

Semantics follow transformers' modeling_llama / modeling_qwen2 /
modeling_mistral in eager mode: RMSNorm in fp32 (x * rsqrt(mean(x^2) +
eps) * w), rotate_half RoPE with HF's float32 inv_freq (and llama3 / linear
rope_scaling), grouped-query attention via repeat_kv, SwiGLU MLP, tied
embeddings, q/k/v bias for Qwen2 (all four for Llama attention_bias),
causal plus padding mask. Position ids with padding are those
transformers' generate() uses: cumsum(attention_mask) - 1.
"""

import argparse
import json
import math
import os
import struct
import sys

import numpy as np
import torch


def read_safetensors(path):
    """Returns {name: float32 torch tensor} from one safetensors file."""
    with open(path, "rb") as f:
        data = f.read()
    (n,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8 : 8 + n])
    base = 8 + n
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        b, e = info["data_offsets"]
        raw = data[base + b : base + e]
        shape = info["shape"]
        dt = info["dtype"]
        if dt == "F32":
            arr = np.frombuffer(raw, dtype="<f4").astype(np.float32)
        elif dt == "F16":
            arr = np.frombuffer(raw, dtype="<f2").astype(np.float32)
        elif dt == "BF16":
            u = np.frombuffer(raw, dtype="<u2").astype(np.uint32) << 16
            arr = u.view(np.float32)
        else:
            raise ValueError("%s: tensor %s: unsupported dtype %s" % (path, name, dt))
        out[name] = torch.from_numpy(arr.reshape(shape).copy())
    return out


def load_dir(path):
    """Returns (config dict, {name: tensor}) of a Hugging Face model directory."""
    with open(os.path.join(path, "config.json")) as f:
        config = json.load(f)
    index = os.path.join(path, "model.safetensors.index.json")
    weights = {}
    if os.path.exists(index):
        with open(index) as f:
            files = sorted(set(json.load(f)["weight_map"].values()))
        for fn in files:
            weights.update(read_safetensors(os.path.join(path, fn)))
    else:
        weights = read_safetensors(os.path.join(path, "model.safetensors"))
    return config, weights


def rope_inv_freq(config):
    """HF's _compute_default_rope_parameters / _compute_llama3_parameters."""
    heads = config["num_attention_heads"]
    dim = config.get("head_dim") or config["hidden_size"] // heads
    base = config.get("rope_theta", 10000.0)
    inv_freq = 1.0 / (base ** (torch.arange(0, dim, 2, dtype=torch.int64).float() / dim))
    rs = config.get("rope_scaling")
    if rs:
        kind = rs.get("rope_type", rs.get("type"))
        if kind == "linear":
            inv_freq = inv_freq / rs["factor"]
        elif kind == "llama3":
            factor = rs["factor"]
            low = rs["low_freq_factor"]
            high = rs["high_freq_factor"]
            old = rs["original_max_position_embeddings"]
            low_wavelen = old / low
            high_wavelen = old / high
            wavelen = 2 * math.pi / inv_freq
            inv_freq_llama = torch.where(wavelen > low_wavelen, inv_freq / factor, inv_freq)
            smooth = (old / wavelen - low) / (high - low)
            smoothed = (1 - smooth) * inv_freq_llama / factor + smooth * inv_freq_llama
            is_medium = ~(wavelen < high_wavelen) * ~(wavelen > low_wavelen)
            inv_freq = torch.where(is_medium, smoothed, inv_freq_llama)
        elif kind not in (None, "default"):
            raise ValueError("rope_scaling %s not implemented" % kind)
    return inv_freq, dim


def rotate_half(x):
    x1 = x[..., : x.shape[-1] // 2]
    x2 = x[..., x.shape[-1] // 2 :]
    return torch.cat((-x2, x1), dim=-1)


def repeat_kv(x, n_rep):
    b, kvh, t, d = x.shape
    if n_rep == 1:
        return x
    return x[:, :, None, :, :].expand(b, kvh, n_rep, t, d).reshape(b, kvh * n_rep, t, d)


class Model:
    """A Llama/Mistral/Qwen2 causal LM over a dict of HF-named weights."""

    def __init__(self, config, weights, dtype=torch.float32):
        self.config = config
        self.dtype = dtype
        self.w = {k: v.to(dtype) for k, v in weights.items()}
        arch = config["architectures"][0]
        if arch not in ("LlamaForCausalLM", "MistralForCausalLM", "Qwen2ForCausalLM"):
            raise ValueError("unsupported architecture " + arch)
        self.arch = arch
        self.inv_freq, self.head_dim = rope_inv_freq(config)
        self.heads = config["num_attention_heads"]
        self.kv_heads = config.get("num_key_value_heads") or self.heads
        self.eps = config.get("rms_norm_eps", 1e-6)
        if config.get("tie_word_embeddings", False) or "lm_head.weight" not in self.w:
            self.lm_head = self.w["model.embed_tokens.weight"]
        else:
            self.lm_head = self.w["lm_head.weight"]

    def linear(self, name, x):
        """y = x W^T + b for the HF module name (e.g. model.layers.0.self_attn.q_proj)."""
        y = x @ self.w[name + ".weight"].T
        b = self.w.get(name + ".bias")
        if b is not None:
            y = y + b
        return y

    def rms_norm(self, x, weight):
        x32 = x.to(torch.float32) if self.dtype == torch.float32 else x
        var = x32.pow(2).mean(-1, keepdim=True)
        x32 = x32 * torch.rsqrt(var + self.eps)
        return weight * x32.to(x.dtype)

    def forward(self, input_ids, attention_mask=None):
        """Logits [B, T, V] for input_ids [B, T] (LongTensor)."""
        B, T = input_ids.shape
        if attention_mask is None:
            attention_mask = torch.ones(B, T, dtype=torch.long)
        attention_mask = attention_mask.long()
        position_ids = attention_mask.cumsum(-1) - 1
        position_ids = position_ids.masked_fill(attention_mask == 0, 1)

        freqs = (self.inv_freq[None, :, None].float() @ position_ids[:, None, :].float()).transpose(1, 2)
        emb = torch.cat((freqs, freqs), dim=-1)
        cos = emb.cos().to(self.dtype)[:, None, :, :]
        sin = emb.sin().to(self.dtype)[:, None, :, :]

        neg = torch.finfo(self.dtype).min
        causal = torch.tril(torch.ones(T, T, dtype=torch.bool))
        allowed = causal[None, :, :] & attention_mask.bool()[:, None, :]
        window = self.config.get("sliding_window")
        if self.arch == "Qwen2ForCausalLM" and not self.config.get("use_sliding_window", False):
            window = None
        if window:
            diff = position_ids[:, :, None] - position_ids[:, None, :]
            allowed = allowed & (diff < window)
        mask = torch.zeros(B, 1, T, T, dtype=self.dtype).masked_fill(~allowed[:, None, :, :], neg)

        x = self.w["model.embed_tokens.weight"][input_ids]
        D, H, KVH = self.head_dim, self.heads, self.kv_heads
        for i in range(self.config["num_hidden_layers"]):
            p = "model.layers.%d." % i
            h = self.rms_norm(x, self.w[p + "input_layernorm.weight"])
            q = self.linear(p + "self_attn.q_proj", h).view(B, T, H, D).transpose(1, 2)
            k = self.linear(p + "self_attn.k_proj", h).view(B, T, KVH, D).transpose(1, 2)
            v = self.linear(p + "self_attn.v_proj", h).view(B, T, KVH, D).transpose(1, 2)
            q = q * cos + rotate_half(q) * sin
            k = k * cos + rotate_half(k) * sin
            k = repeat_kv(k, H // KVH)
            v = repeat_kv(v, H // KVH)
            scores = (q @ k.transpose(2, 3)) * (D ** -0.5) + mask
            probs = torch.softmax(scores.float(), dim=-1).to(self.dtype)
            a = (probs @ v).transpose(1, 2).reshape(B, T, H * D)
            x = x + self.linear(p + "self_attn.o_proj", a)
            h = self.rms_norm(x, self.w[p + "post_attention_layernorm.weight"])
            g = self.linear(p + "mlp.gate_proj", h)
            u = self.linear(p + "mlp.up_proj", h)
            x = x + self.linear(p + "mlp.down_proj", torch.nn.functional.silu(g) * u)
        x = self.rms_norm(x, self.w["model.norm.weight"])
        return x @ self.lm_head.T


class AdapterModel(Model):
    """Model with a PEFT LoRA or IA3 adapter applied unmerged, as PEFT's
    layers compute it, or a Gantry vanilla adapter's tensors substituted."""

    def __init__(self, config, weights, adapter_dir, dtype=torch.float32):
        self.lora, self.ia3_out, self.ia3_in = {}, {}, {}
        self.scale = 1.0
        manifest = os.path.join(adapter_dir, "gantry_adapter.json")
        tensors = read_safetensors(os.path.join(adapter_dir, "adapter_model.safetensors"))
        if os.path.exists(manifest):
            weights = dict(weights)
            weights.update(tensors)
            super().__init__(config, weights, dtype)
            return
        super().__init__(config, weights, dtype)
        with open(os.path.join(adapter_dir, "adapter_config.json")) as f:
            acfg = json.load(f)
        kind = acfg["peft_type"]
        ff = acfg.get("feedforward_modules") or []
        if isinstance(ff, str):
            ff = [ff]
        if kind == "LORA":
            r = acfg["r"]
            self.scale = acfg["lora_alpha"] / (math.sqrt(r) if acfg.get("use_rslora") else r)
        for name, t in tensors.items():
            base = name[len("base_model.model."):] if name.startswith("base_model.model.") else name
            t = t.to(dtype)
            if base.endswith(".lora_A.weight"):
                self.lora.setdefault(base[: -len(".lora_A.weight")], {})["A"] = t
            elif base.endswith(".lora_B.weight"):
                self.lora.setdefault(base[: -len(".lora_B.weight")], {})["B"] = t
            elif base.endswith(".ia3_l"):
                mod = base[: -len(".ia3_l")]
                if any(mod.endswith(m) for m in ff):
                    self.ia3_in[mod] = t.reshape(-1)
                else:
                    self.ia3_out[mod] = t.reshape(-1)
            else:
                raise ValueError("unexpected adapter tensor " + name)

    def linear(self, name, x):
        if name in self.ia3_in:
            x = x * self.ia3_in[name]
        y = super().linear(name, x)
        if name in self.lora:
            ab = self.lora[name]
            y = y + self.scale * ((x @ ab["A"].T) @ ab["B"].T)
        if name in self.ia3_out:
            y = y * self.ia3_out[name]
        return y


def next_token_loss(logits, input_ids, attention_mask=None):
    """Mean cross-entropy of predicting token t+1 from position t over real tokens."""
    B, T, V = logits.shape
    labels = input_ids[:, 1:].clone()
    if attention_mask is not None:
        labels = labels.masked_fill(attention_mask[:, 1:] == 0, -100)
    return torch.nn.functional.cross_entropy(
        logits[:, :-1, :].reshape(-1, V).double(), labels.reshape(-1), ignore_index=-100
    ).item()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", required=True)
    ap.add_argument("--input", required=True)
    ap.add_argument("--output", required=True)
    ap.add_argument("--float64", action="store_true")
    ap.add_argument("--adapter", help="PEFT LoRA/IA3 or Gantry vanilla adapter directory")
    args = ap.parse_args()
    with open(args.input) as f:
        req = json.load(f)
    config, weights = load_dir(args.model)
    dtype = torch.float64 if args.float64 else torch.float32
    if args.adapter:
        model = AdapterModel(config, weights, args.adapter, dtype=dtype)
    else:
        model = Model(config, weights, dtype=dtype)
    # One request, or {"requests": [...]} whose logits are concatenated.
    reqs = req["requests"] if "requests" in req else [req]
    losses = []
    with open(args.output, "wb") as out:
        for r in reqs:
            ids = torch.tensor(r["input_ids"], dtype=torch.long)
            mask = r.get("attention_mask")
            mask = torch.tensor(mask, dtype=torch.long) if mask is not None else None
            with torch.no_grad():
                logits = model.forward(ids, mask)
            out.write(logits.to(torch.float32).numpy().astype("<f4").tobytes())
            losses.append(next_token_loss(logits, ids, mask))
    json.dump({"loss": losses[0], "losses": losses}, sys.stdout)


if __name__ == "__main__":
    main()
