"""What the bilevel step costs: one TGeo-KD step (virtual step with create_graph, validation forward through
theta', second-order backward to f_w, then the student's own step) against one plain KD step, same student.

The ratio is what a `cpu` or `full` recipe has to budget for TGeo-KD relative to the baselines (which all run
at about the plain step's cost). Run:  python -m kdutils.chapters.tgeo.bench  [--device cuda]
"""
from __future__ import annotations

import argparse
from typing import Sequence

import torch
from torch.utils import benchmark

from kdutils.chapters.tgeo.bilevel import bilevel_step
from kdutils.chapters.tgeo.fusion_net import FusionRatioNet
from kdutils.chapters.tgeo.geometry import teacher_class_means
from kdutils.losses import kd_objective
from kdutils.models import build_model

__all__ = ["bench_bilevel_vs_plain"]


def bench_bilevel_vs_plain(batch_size: int = 128, in_shape: Sequence[int] = (1, 28, 28), hidden: Sequence[int] = (256,),
                           num_classes: int = 10, features: str = "both", tau: float = 4.0,
                           device: str = "cpu", min_run_time: float = 1.0, verbose: bool = True) -> dict[str, float]:
    """Median seconds per step of plain KD (fixed alpha) and of one bilevel step on an MLP student; and the ratio.

    Also times a TGeo student step without the outer update (alpha from f_w, no hypergradient), the cost
    of the steps in between when f_w is only stepped every k batches (`fit_tgeo(outer_every=k)`).
    """
    dev = torch.device(device)
    g = torch.Generator(device="cpu").manual_seed(0)
    torch.manual_seed(0)
    student = build_model("mlp", in_shape, num_classes, hidden=list(hidden)).to(dev)
    fnet = FusionRatioNet.for_classes(num_classes, features).to(dev)
    x = torch.randn(batch_size, *in_shape, generator=g).to(dev)
    vx = torch.randn(batch_size, *in_shape, generator=g).to(dev)
    y = (torch.arange(batch_size) % num_classes).to(dev)
    teacher = (3 * torch.nn.functional.one_hot(y, num_classes) + torch.randn(batch_size, num_classes,
                                                                          generator=g).to(dev)).float()
    class_means = teacher_class_means(teacher, y) if features != "intra" else None
    s_opt = torch.optim.SGD(student.parameters(), lr=0.01, momentum=0.9)
    f_opt = torch.optim.Adam(fnet.parameters(), lr=1e-3)
    use_amp = dev.type == "cuda"

    def plain() -> None:
        with torch.autocast(dev.type, dtype=torch.bfloat16, enabled=use_amp):
            logits = student(x)
        loss = kd_objective(logits.float(), y, teacher, tau=tau, alpha=0.5)
        s_opt.zero_grad(set_to_none=True)
        loss.backward()
        s_opt.step()

    def tgeo(outer: bool) -> None:
        bilevel_step(student, fnet, s_opt, f_opt if outer else None, x, y, teacher, vx, y,
                     class_means=class_means, features=features, tau=tau, use_amp=use_amp)

    sync = "torch.cuda.synchronize()" if dev.type == "cuda" else "pass"
    times = {}
    for name, fn in (("plain_kd_s", plain), ("tgeo_student_only_s", lambda: tgeo(False)),
                     ("tgeo_bilevel_s", lambda: tgeo(True))):
        for _ in range(3):  # warm-up
            fn()
        timer = benchmark.Timer(stmt="fn(); " + sync, globals={"fn": fn, "torch": torch},
                                num_threads=torch.get_num_threads())
        times[name] = timer.blocked_autorange(min_run_time=min_run_time).median
    times["ratio_bilevel_over_plain"] = times["tgeo_bilevel_s"] / times["plain_kd_s"]
    if verbose:
        print(f"MLP {list(hidden)} student, batch {batch_size}, {num_classes} classes, features={features!r}, "
              f"device={device}, threads={torch.get_num_threads()}")
        print(f"  plain KD step          {1e3 * times['plain_kd_s']:8.3f} ms")
        print(f"  TGeo step, no outer    {1e3 * times['tgeo_student_only_s']:8.3f} ms")
        print(f"  TGeo bilevel step      {1e3 * times['tgeo_bilevel_s']:8.3f} ms")
        print(f"  bilevel / plain ratio  {times['ratio_bilevel_over_plain']:8.2f}x")
    return times


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--hidden", type=int, nargs="+", default=[256])
    parser.add_argument("--min-run-time", type=float, default=1.0)
    args = parser.parse_args(argv)
    bench_bilevel_vs_plain(batch_size=args.batch_size, hidden=args.hidden, device=args.device,
                           min_run_time=args.min_run_time)


if __name__ == "__main__":
    main()
