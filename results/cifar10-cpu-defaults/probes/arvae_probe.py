"""Why does arvae reconstruct worse than vae at equal steps? (issue 29, item 2)

Trains arvae and vae from the same seed on CIFAR-10 (bench's networks at width 32, batch 64,
flips off) and, every `--every` steps, measures on 256 fixed test images:

* recon: the MSE of reconstruct(x) (pixels in [0, 1], as the reconstruction column);
* for arvae, what the adversarial encoder step (phase 3) does to that MSE: the MSE just before
  and just after `encoder_adversarial`'s step, summed over the window, against what the
  reconstruction step (phase 1) gained over the same steps;
* the posterior's mean std s(x) and the KL term (weight 0 in arvae: not trained).

Configurations: arvae's defaults; arvae with the adversarial phase at adv_lr/10 and /100;
arvae with kl_weight 1 (a VAE plus the adversarial prior); vae's defaults.

    python results/cifar10-cpu-defaults/probes/arvae_probe.py --data-dir ../shared/data --steps 600
"""

from __future__ import annotations

import argparse
import json
import time

import torch

from bench.data import open_dataset
from bench.plugins import load_plugins
from bench.variant_config import config_from_dict

CONFIGS = {
    "arvae": ("arvae", {}),
    "arvae adv_lr 2e-5": ("arvae", {"adv_lr": 2e-5}),
    "arvae adv_lr 2e-6": ("arvae", {"adv_lr": 2e-6}),
    "arvae kl_weight 1": ("arvae", {"kl_weight": 1.0}),
    "vae": ("vae", {}),
}


def to_unit(x):
    return (x + 1) / 2


@torch.no_grad()
def recon_mse(v, x):
    return float((to_unit(v.reconstruct(x)) - to_unit(x)).pow(2).mean())


@torch.no_grad()
def posterior_std(v, x):
    v.networks["encoder"].eval()
    mu, logvar = v.encode(x)
    v.networks["encoder"].train()
    return float((0.5 * logvar).exp().mean()), float(mu.std())


def train_arvae_step(v, batch, held):
    """arvae.train_step, phase by phase, with the held-out MSE read around phase 3."""
    opt = v.optimizers
    before_rec = recon_mse(v, held)
    rec = v.reconstruction_loss(batch)
    for n in ("encoder", "decoder"):
        opt[n].zero_grad(set_to_none=True)
    rec["loss"].backward(inputs=v._params("encoder", "decoder"))
    opt["encoder"].step(), opt["decoder"].step()
    after_rec = recon_mse(v, held)
    z_q = v.codes(batch)
    z_p = v.latent(batch.shape[0], v.config.latent)
    loss_d = v.discriminator_loss(z_p, z_q)
    opt["latent_discriminator"].zero_grad(set_to_none=True)
    loss_d.backward(inputs=v._params("latent_discriminator"))
    opt["latent_discriminator"].step()
    loss_adv = v.adversarial_loss(z_q)
    opt["encoder_adversarial"].zero_grad(set_to_none=True)
    loss_adv.backward(inputs=v._params("encoder"))
    opt["encoder_adversarial"].step()
    after_adv = recon_mse(v, held)
    return after_rec - before_rec, after_adv - after_rec, float(rec["kl"])


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--data-dir", required=True)
    p.add_argument("--steps", type=int, default=600)
    p.add_argument("--every", type=int, default=100)
    p.add_argument("--out", default="arvae_probe.json")
    a = p.parse_args()
    torch.set_num_threads(2)
    plugins = load_plugins(entry_points=False)
    data = open_dataset(plugins.datasets, "cifar10", data_dir=a.data_dir)
    train = data.split("train").images
    held = data.split("test").images[:256].float() / 127.5 - 1
    results = {}
    for label, (model, options) in CONFIGS.items():
        cls = plugins.models.get(model).obj
        v = cls((3, 32, 32), config_from_dict(cls, {"width": 32, **options}), torch.device("cpu"), 0)
        v.train()
        picks = torch.Generator().manual_seed(0)
        rows, gain_rec, cost_adv, start = [], 0.0, 0.0, time.time()
        for step in range(1, a.steps + 1):
            batch = train[torch.randint(0, len(train), (64,), generator=picks)].float() / 127.5 - 1
            if model == "arvae" and step % 10 == 0:  # the phase-3 probe on every tenth step
                d_rec, d_adv, kl = train_arvae_step(v, batch, held)
                gain_rec, cost_adv = gain_rec + d_rec, cost_adv + d_adv
            else:
                kl = float(v.train_step(batch)["kl"])
            if step % a.every == 0:
                s, mu_std = posterior_std(v, held)
                rows.append({"step": step, "recon_mse": recon_mse(v, held), "posterior_std": s,
                             "mu_std": mu_std, "kl": kl, "recon_step_delta_sum": gain_rec,
                             "adv_step_delta_sum": cost_adv})
                print(label, rows[-1], f"{time.time() - start:.0f}s", flush=True)
        results[label] = rows
    with open(a.out, "w") as f:
        json.dump(results, f, indent=1)


if __name__ == "__main__":
    main()
