"""DCGAN training throughput: Muse's recipe against the pytorch/examples reference loop, in one run.

Both loops train the *same* networks (our G and D) at the same batch size (64):

- reference: pytorch/examples ``dcgan/main.py`` as shipped: an image-folder dataset that opens each PNG and
  applies per-sample transforms (resize, centre-crop, to-tensor, normalise), a ``DataLoader`` with 2
  workers, fp32, BCE on logits, D run separately on real and fake, D's weight gradients computed (and
  thrown away) in the G step;
- ours: `genmodels.training.dcgan.DCGANTrainer`, the loop that trained the shipped weights, with all its
  stabilisers (DiffAugment, hinge, lazy R1, mode seeking, EMA): data resident on the device, no loader
  workers competing for the cores, D frozen in the G step, channels_last, and bf16 autocast on CUDA and on
  CPUs with native bf16 instructions. Where bf16 is used, the same loop in fp32 is timed too.

Run it with ``muse bench train --json``. The ratio is what to read: both loops run on the same machine in the
same process, one after the other.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from genmodels.data.emoji import load_image_dataset, to_model
from genmodels.data.imagefile import decode_image
from genmodels.nets.dcgan import DCGANConfig, Discriminator, Generator, init_weights
from genmodels.training import common
from genmodels.training.dcgan import DCGANTrainConfig, DCGANTrainer


class FolderDataset(torch.utils.data.Dataset):
    """What torchvision's ImageFolder + Compose([Resize, CenterCrop, ToTensor, Normalize]) does, per sample."""

    def __init__(self, files: list[Path], labels: list[int], size: int = 64):
        self.files, self.labels, self.size = files, labels, size

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, i: int):
        im = decode_image(self.files[i]).resize((self.size, self.size), Image.BILINEAR)  # open as RGBA, Resize
        w, h = im.size
        left, top = (w - self.size) // 2, (h - self.size) // 2
        im = im.crop((left, top, left + self.size, top + self.size))  # CenterCrop
        x = torch.from_numpy(np.asarray(im, dtype=np.uint8).copy())[None]  # ToTensor
        return to_model(x)[0], self.labels[i]  # Normalize to [-1, 1] (premultiplied, as our data)


def reference_loop(files, labels, cfg: DCGANConfig, device: torch.device, steps: int, warmup: int, batch: int = 64):
    loader = torch.utils.data.DataLoader(FolderDataset(files, labels), batch_size=batch, shuffle=True,
                                         num_workers=2, persistent_workers=True)
    G, D = Generator(cfg).to(device), Discriminator(cfg).to(device)
    G.apply(init_weights)
    D.apply(init_weights)
    opt_d = torch.optim.Adam(D.parameters(), lr=2e-4, betas=(0.5, 0.999))
    opt_g = torch.optim.Adam(G.parameters(), lr=2e-4, betas=(0.5, 0.999))
    crit = torch.nn.BCEWithLogitsLoss()
    done, seen, t0 = 0, 0, None
    while done < warmup + steps:
        for real, y in loader:
            if done == warmup:
                if device.type == "cuda":
                    torch.cuda.synchronize()
                t0 = time.perf_counter()
            real, y = real.to(device), y.to(device)
            b = real.size(0)
            D.zero_grad()
            err_real = crit(D(real, y), torch.ones(b, device=device))
            err_real.backward()
            fake = G(torch.randn(b, cfg.nz, device=device), y)
            err_fake = crit(D(fake.detach(), y), torch.zeros(b, device=device))
            err_fake.backward()
            opt_d.step()
            G.zero_grad()
            err_g = crit(D(fake, y), torch.ones(b, device=device))
            err_g.backward()
            opt_g.step()
            done += 1
            seen += b if done > warmup else 0
            if done >= warmup + steps:
                break
    if device.type == "cuda":
        torch.cuda.synchronize()
    return seen / (time.perf_counter() - t0)


def ours_loop(images, labels, cfg: DCGANConfig, device: torch.device, steps: int, warmup: int, batch: int = 64,
              cpu_bf16: bool = True):
    trainer = DCGANTrainer(images, labels, cfg, DCGANTrainConfig(batch=batch, cpu_bf16=cpu_bf16), device)
    for i in range(warmup):
        trainer.step(i)
    if device.type == "cuda":
        torch.cuda.synchronize()
    t0 = time.perf_counter()
    for i in range(warmup, warmup + steps):
        trainer.step(i)
    if device.type == "cuda":
        torch.cuda.synchronize()
    return steps * batch / (time.perf_counter() - t0)


def run(steps: int = 30, warmup: int = 5, device: str = "auto", data_path: Path = Path("data/images.npz")) -> dict:
    dev = common.pick_device(device)
    data = load_image_dataset(data_path)
    cfg = DCGANConfig(n_classes=data.n_labels)
    with tempfile.TemporaryDirectory() as tmp:
        files = []
        for i, a in enumerate(data.train_images):
            f = Path(tmp) / f"{i:05d}.png"
            Image.fromarray(a, "RGBA").save(f)
            files.append(f)
        torch.manual_seed(0)
        ref = reference_loop(files, data.train_labels.tolist(), cfg, dev, steps, warmup)
    images, labels = to_model(data.train_images), torch.as_tensor(data.train_labels)
    torch.manual_seed(0)
    ours = ours_loop(images, labels, cfg, dev, steps, warmup)
    torch.manual_seed(0)
    # fp32 is timed separately only on CPUs where our loop would use bf16; on CUDA the loop is always bf16
    ours_fp32 = None if dev.type == "cuda" else ours if not common.cpu_has_native_bf16() else ours_loop(
        images, labels, cfg, dev, steps, warmup, cpu_bf16=False)
    return {
        "benchmark": "dcgan_train_throughput",
        "device": torch.cuda.get_device_name(dev) if dev.type == "cuda" else f"cpu ({torch.get_num_threads()} threads)",
        "network": {"ngf": cfg.ngf, "ndf": cfg.ndf, "nz": cfg.nz},
        "batch": 64,
        "timed_steps": steps,
        "reference_img_per_s": round(ref, 1),
        "ours_img_per_s": round(ours, 1),
        "speedup": round(ours / ref, 2),
        "ours_bf16_autocast": dev.type == "cuda" or common.cpu_has_native_bf16(),
        "ours_fp32_img_per_s": None if ours_fp32 is None else round(ours_fp32, 1),
        "speedup_fp32": None if ours_fp32 is None else round(ours_fp32 / ref, 2),
    }
