"""Training-step speed of EmoSynthNet against torchvision's ResNet-18, measured side by side in one run.

    flock /tmp/bench.lock python benchmarks/models.py             # CPU: batch 64, 48×48 gray, channels-last, float32
    python benchmarks/models.py --quick                           # fewer repeats, tiny + ResNet-18 only
    python benchmarks/models.py --device cuda                     # GPU: 32×32 RGB, bf16 autocast, channels-last, torch.compile

One training step = forward + backward + AdamW step (EmoSynthNet: main CE + 0.3 × auxiliary CE, as in training).
The multiply-accumulates of a step are counted by `torch.utils.flop_counter` over the forward AND backward pass of
that model at that batch (MACs = FLOPs / 2; the optimizer's element-wise update is not counted), so
"GMAC/s" is the achieved rate of the convolution/matmul work. The reference is ResNet-18 with a 1-channel (or
`--in-chans`) stem, timed in the same process, interleaved with the other models; times are the median of the
timed repeats. The target: EmoSynthNet's step achieves at least 0.8× ResNet-18's MAC/s. Ratios are robust to a
loaded machine; absolute numbers are not.
"""
import argparse, datetime, platform, statistics, sys, time
from pathlib import Path
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing
import torch
import torch.nn.functional as F
from torch.utils.flop_counter import FlopCounterMode
from emosynth_nb.models import emosynthnet, emosynthnet_tiny, create_baseline, count_params

TARGET = 0.8  # EmoSynthNet MAC/s ÷ ResNet-18 MAC/s

def loss_of(out, y):
    "CE of the main logits (+ 0.3 × CE of the auxiliary logits when the model returns them)."
    if isinstance(out, tuple): return F.cross_entropy(out[0].float(), y) + 0.3 * F.cross_entropy(out[1].float(), y)
    return F.cross_entropy(out.float(), y)

def make_step(model, x, y, device, amp, compile_):
    "A closure running one training step; the model is moved to `device`, channels-last."
    model = model.to(device).to(memory_format=torch.channels_last).train()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3, fused=device.type == 'cuda')
    fwd = torch.compile(model) if compile_ else model
    def step():
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=amp):
            out = fwd(x)
        loss = loss_of(out, y)
        opt.zero_grad(set_to_none=True); loss.backward(); opt.step()
        return loss
    return model, step

def train_macs(model, x, y):
    "MACs of one forward + backward pass (FlopCounterMode, FLOPs / 2), eager, float32."
    model.train()
    with FlopCounterMode(display=False) as fc: loss_of(model(x), y).backward()
    model.zero_grad(set_to_none=True)
    return fc.get_total_flops() / 2

def sync(device):
    if device.type == 'cuda': torch.cuda.synchronize()

def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('--device', default='cpu', choices=['cpu', 'cuda'])
    p.add_argument('--batch', type=int, default=None, help='batch size (default 64 on CPU, 256 on CUDA)')
    p.add_argument('--size', type=int, default=None, help='image side (default 48 on CPU, 32 on CUDA)')
    p.add_argument('--in-chans', type=int, default=None, help='input channels (default 1 on CPU, 3 on CUDA)')
    p.add_argument('--classes', type=int, default=None, help='classes (default 7 on CPU, 10 on CUDA)')
    p.add_argument('--reps', type=int, default=None, help='timed steps per model (default 3 CPU, 30 CUDA)')
    p.add_argument('--warmup', type=int, default=None, help='untimed steps per model (default 1 CPU, 5 CUDA)')
    p.add_argument('--compile', action=argparse.BooleanOptionalAction, default=None,
                   help='torch.compile the models (default: on for CUDA, off for CPU)')
    p.add_argument('--amp', action=argparse.BooleanOptionalAction, default=None,
                   help='bf16 autocast (default: on for CUDA, off for CPU)')
    p.add_argument('--quick', action='store_true', help='tiny EmoSynthNet and ResNet-18 only, fewer repeats')
    p.add_argument('--threads', type=int, default=None, help='CPU threads (default: PyTorch\'s; 1 is steadier on a loaded machine)')
    a = p.parse_args(argv)
    cuda = a.device == 'cuda'
    if cuda and not torch.cuda.is_available(): sys.exit("--device cuda was asked for but CUDA is not available here")
    device = torch.device(a.device)
    if a.threads: torch.set_num_threads(a.threads)  # a benchmark setting, never done in the library
    batch = a.batch or (256 if cuda else 64); size = a.size or (32 if cuda else 48)
    chans = a.in_chans or (3 if cuda else 1); classes = a.classes or (10 if cuda else 7)
    reps = a.reps or (30 if cuda else (2 if a.quick else 3)); warmup = a.warmup if a.warmup is not None else (5 if cuda else 1)
    compile_ = cuda if a.compile is None else a.compile; amp = cuda if a.amp is None else a.amp
    if cuda: torch.backends.cudnn.benchmark = True; torch.backends.cuda.matmul.allow_tf32 = True; torch.backends.cudnn.allow_tf32 = True

    torch.manual_seed(0)
    builders = {'resnet18 (reference)': lambda: create_baseline('resnet18', classes, chans),
                'emosynthnet_tiny': lambda: emosynthnet_tiny(classes, chans)}
    if not a.quick: builders['emosynthnet'] = lambda: emosynthnet(classes, chans)
    x_cpu = torch.randn(batch, chans, size, size); y_cpu = torch.randint(0, classes, (batch,))
    macs, steps, params = {}, {}, {}
    for name, build in builders.items():
        m = build()
        params[name] = count_params(m)
        macs[name] = train_macs(m, x_cpu[:2], y_cpu[:2]) * batch / 2  # counted on 2 images, scaled to the batch
        x = x_cpu.to(device).contiguous(memory_format=torch.channels_last); y = y_cpu.to(device)
        _, steps[name] = make_step(m, x, y, device, amp, compile_)
    for name, step in steps.items():  # warm-up (and compilation)
        for _ in range(warmup): step()
        sync(device)
    times = {k: [] for k in steps}
    for _ in range(reps):  # interleaved, so that load changes hit every model alike
        for name, step in steps.items():
            sync(device); t = time.perf_counter(); step(); sync(device); times[name].append(time.perf_counter() - t)

    ref = 'resnet18 (reference)'
    t_ref = statistics.median(times[ref]); rate_ref = macs[ref] / t_ref
    dev_name = torch.cuda.get_device_name() if cuda else f"{platform.processor() or platform.machine()}, {torch.get_num_threads()} thread{'s' * (torch.get_num_threads() != 1)}"
    print(f"## Training step, {a.device} ({dev_name}), {datetime.datetime.now(datetime.UTC):%Y-%m-%d %H:%M} UTC")
    print(f"batch {batch}, {size}×{size}×{chans}, {classes} classes, channels-last, "
          f"{'bf16 autocast' if amp else 'float32'}, torch.compile {'on' if compile_ else 'off'}, AdamW; "
          f"median of {reps} interleaved steps after {warmup} warm-up; torch {torch.__version__}\n")
    print("| model | params | GMAC/step (fwd+bwd) | ms/step | images/s | GMAC/s | images/s ÷ ref | MAC/s ÷ ref | ok (MAC/s ≥ 0.8× ref) |")
    print("|---|---|---|---|---|---|---|---|---|")
    for name in steps:
        t = statistics.median(times[name]); rate = macs[name] / t
        ratio = rate / rate_ref; ok = ratio >= TARGET if name != ref else True
        print(f"| {name} | {params[name]/1e6:.3f} M | {macs[name]/1e9:.2f} | {t*1e3:.1f} | {batch/t:.0f} | {rate/1e9:.1f} | "
              f"{t_ref/t:.2f} | {ratio:.2f} | {'—' if name == ref else ('yes' if ok else 'no')} |")
    print("\nThe MAC/s target applies to the full EmoSynthNet; the tiny variant is memory-bound by design (few channels), "
          "its row shows its step time.")
    return 0

if __name__ == '__main__':
    sys.exit(main())
