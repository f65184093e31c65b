"""Prove that this machine's GPU (Apple MPS or CUDA) trains geogui correctly, in under two minutes.

    python benchmarks/device_check.py [--device auto|cpu|cuda|mps] [--tiny] [--json FILE]

Six checks, each printed as it ends and again in a summary table:
  device            the requested device is really used (a fallback to the CPU is a failure)
  non-blocking copy token batches copied with non_blocking=True arrive intact, both the unsafe way
                    (host tensor freed at once, pytorch#139550) and the way the app stages them
  geometric = loop  the batched geometric step equals the reference loop on the device (1e-4),
                    loss terms and every gradient
  device = CPU      every mode's loss terms and gradients on the device equal a CPU copy of the
                    same weights (1e-3 relative: float32 on different kernels)
  corpus in QThread the embedded corpus builds inside a QThread set up as the app's training thread
                    (macOS gives a QThread 512 KiB of stack; the corpus generator recurses)
  trainer           the real Trainer runs 5 steps of each mode with finite losses; step times and
                    memory are reported
The exit code is 1 when any check fails. `--json FILE` writes the machine, every check and the
per-mode timings. `--tiny` uses a tiny model, so that a test can run the whole script on a CPU.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import signal
import statistics
import subprocess
import sys
import time
import traceback
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable

import torch

from geogui.engine.data import get_batch, load_corpus
from geogui.engine.device import DeviceChoice, choose_device, driver_memory_bytes, synchronize
from geogui.engine.metrics import BatchRecord, RunEvent, RunFinished
from geogui.engine.modes import TERM_NAMES, LossWeights, compute_terms, geometric_terms, geometric_terms_reference
from geogui.engine.trainer import Trainer, build_state
from geogui.settings import DataSettings, Mode, Settings

try:  # the app's own batch staging, where this version of geogui has one
    from geogui.engine.transfer import stage as app_stage
except ImportError:
    app_stage = None

TRAINER_STEPS = 5
GEOMETRIC_TOLERANCE = 1e-4
DEVICE_TOLERANCE = 1e-3  # relative
CORPUS_TIMEOUT_S = 120
# Part-awake ghosts, so that the ghost gates (and a dormant ghost's zero gradient) are compared too.
GHOST_ACTIVATIONS = (0.5, 0.25, 0.0, 1.0)
TINY_MODEL = {"d_model": 32, "n_layers": 2, "n_heads": 2, "seq_len": 16, "expert_hidden": 48}


@dataclass
class Size:
    name: str
    copy_batches: int  # token batches copied in the non-blocking check
    compare_batch: int  # batch size of the equivalence checks (smaller than training's: the loop is slow)
    busy_width: int  # a matmul of this width per copy keeps the device queue busy, as training does


SIZES = {"default": Size("default", 200, 4, 256), "tiny": Size("tiny", 16, 2, 64)}


@dataclass
class CheckResult:
    passed: bool
    detail: str
    data: dict[str, Any] = field(default_factory=dict)
    name: str = ""  # set by run_check, from CHECKS
    seconds: float = 0.0


@dataclass
class Context:
    settings: Settings  # what every check trains: the app's defaults, or tiny ones
    size: Size
    choice: DeviceChoice

    @property
    def device(self) -> torch.device:
        return self.choice.device


def make_settings(requested: str, size: Size) -> Settings:
    raw = Settings().model_dump(mode="json")
    if size.name == "tiny":
        raw["model"].update(TINY_MODEL)
        raw["run"]["batch_size"] = 4
    # The trainer evaluates once, after the last step: one batch keeps that short.
    raw["run"].update(steps=TRAINER_STEPS, eval_batches=1, eval_interval=1_000_000)
    raw["device"]["device"] = requested
    return Settings.model_validate(raw)


def machine_info(ctx: Context) -> dict[str, Any]:
    device = ctx.device
    info: dict[str, Any] = {
        "torch": torch.__version__, "python": platform.python_version(), "platform": platform.platform(),
        "machine": platform.machine(), "requested_device": ctx.choice.requested, "device": str(device),
        "fallback_reason": ctx.choice.fallback_reason, "torch_threads": torch.get_num_threads(),
        # With this set, ops MPS lacks run on the CPU silently: worth knowing when reading the timings.
        "PYTORCH_ENABLE_MPS_FALLBACK": os.environ.get("PYTORCH_ENABLE_MPS_FALLBACK"),
        "size": ctx.size.name,
    }
    if sys.platform == "darwin":
        info["macos"] = platform.mac_ver()[0]
    if device.type == "cuda":
        props = torch.cuda.get_device_properties(device)
        info.update(device_name=props.name, device_memory_bytes=props.total_memory)
    elif device.type == "mps":
        info["recommended_max_memory_bytes"] = torch.mps.recommended_max_memory()
    return info


# --------------------------------------------------------------------------------------------------
# The checks
# --------------------------------------------------------------------------------------------------


def check_device(ctx: Context) -> CheckResult:
    choice = ctx.choice
    info = f"torch {torch.__version__}, {platform.platform()}, device {choice.device} (asked: {choice.requested})"
    if choice.fallback_reason:
        return CheckResult(False, f"fell back: {choice.fallback_reason}; {info}")
    return CheckResult(True, info)


Pair = tuple[torch.Tensor, torch.Tensor]


def _compare_copies(staged: list[Pair], expected: list[Pair]) -> tuple[int, int]:
    """(batches that differ, token ids that differ) between device copies and the host's."""
    bad_batches = bad_ids = 0
    for device_copies, host_copies in zip(staged, expected):
        wrong = sum(int((d.cpu() != h).sum()) for d, h in zip(device_copies, host_copies))
        bad_batches += wrong > 0
        bad_ids += wrong
    return bad_batches, bad_ids


def _copy_freed_at_once(x: torch.Tensor, y: torch.Tensor, device: torch.device, held: list) -> Pair:
    return x.to(device, non_blocking=True), y.to(device, non_blocking=True)


def _copy_as_the_app_does(x: torch.Tensor, y: torch.Tensor, device: torch.device, held: list) -> Pair:
    if app_stage is None:  # a geogui without the staging helper: hold the host tensors ourselves
        held.append((x, y))
        return x.to(device, non_blocking=True), y.to(device, non_blocking=True)
    batch = app_stage(x, y, device)
    held.append(batch)
    return batch.x, batch.y


def check_nonblocking_copy(ctx: Context) -> CheckResult:
    device, size, cfg = ctx.device, ctx.size, ctx.settings.model
    tokens = torch.randint(0, 256, (200_000,), dtype=torch.uint8, generator=torch.Generator().manual_seed(0))
    generator = torch.Generator().manual_seed(1)
    busy = torch.randn(size.busy_width, size.busy_width, device=device) / math.sqrt(size.busy_width)
    results = {}
    for way, copy_batch in (("freed at once", _copy_freed_at_once), ("as the app does", _copy_as_the_app_does)):
        staged, expected, held = [], [], []
        for _ in range(size.copy_batches):
            x, y = get_batch(tokens, ctx.settings.run.batch_size, cfg.seq_len, generator)
            expected.append((x.clone(), y.clone()))
            busy = torch.tanh(busy @ busy)  # queued work that the copy waits behind, as in training
            staged.append(copy_batch(x, y, device, held))
            del x, y  # freed at once: nothing else on the host refers to the batch any more
        synchronize(device)
        for batch in held:
            getattr(batch, "release", lambda: None)()
        held.clear()
        results[way] = _compare_copies(staged, expected)
    app_way = "geogui.engine.transfer.stage" if app_stage is not None else "host kept until synchronize"
    data = {way: {"batches_wrong": b, "ids_wrong": i, "batches": size.copy_batches} for way, (b, i) in results.items()}
    data["app_way"] = app_way
    detail = "; ".join(f"{way}: {b}/{size.copy_batches} batches wrong ({i} ids)" for way, (b, i) in results.items())
    return CheckResult(all(b == 0 for b, _ in results.values()), f"{detail} [app: {app_way}]", data=data)


def _state(ctx: Context, device: torch.device):
    state = build_state(ctx.settings, device)
    ghosts = ctx.settings.model.num_ghost_experts
    activations = [GHOST_ACTIVATIONS[i % len(GHOST_ACTIVATIONS)] for i in range(ghosts)]
    for layer in state.model.moe_layers:
        layer.set_extra_state({"ghost_activation": activations, "saturation_ema": 0.0, "saturated_steps": 0})
    return state.model, state.rotator


def _batch(ctx: Context, device: torch.device, seed: int = 2):
    tokens = torch.randint(0, 256, (50_000,), dtype=torch.uint8, generator=torch.Generator().manual_seed(seed))
    x, y = get_batch(tokens, ctx.size.compare_batch, ctx.settings.model.seq_len, torch.Generator().manual_seed(seed))
    return x.to(device), y.to(device)


def _terms_and_gradients(model, rotator, fn) -> tuple[dict[str, float], dict[str, torch.Tensor]]:
    model.zero_grad(set_to_none=True)
    rotator.zero_grad(set_to_none=True)
    terms = fn()
    terms.loss.backward()
    values = dict(zip(TERM_NAMES, terms.stacked().cpu().tolist()))
    params = list(model.named_parameters()) + [("rotator." + n, p) for n, p in rotator.named_parameters()]
    grads = {n: (p.grad if p.grad is not None else torch.zeros_like(p)).detach().cpu().clone() for n, p in params}
    return values, grads


def _worst_term(a: dict[str, float], b: dict[str, float], scale: Callable[[float], float]) -> tuple[str, float]:
    """The term with the largest difference, in units of its tolerance scale."""
    return max(((name, abs(a[name] - b[name]) / scale(b[name])) for name in b), key=lambda item: item[1])


def _worst_gradient(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor], relative: bool) -> tuple[str, float]:
    worst = ("", 0.0)
    for name, reference in b.items():
        diff = float((a[name] - reference).abs().max())
        if relative:
            diff /= max(float(reference.abs().max()), 1e-6)
        if not math.isfinite(diff) or diff > worst[1]:
            worst = (name, diff)
    return worst


def check_geometric_equivalence(ctx: Context) -> CheckResult:
    device, cfg, run = ctx.device, ctx.settings.model, ctx.settings.run
    model, rotator = _state(ctx, device)
    weights = LossWeights.from_settings(run, cfg)
    x, y = _batch(ctx, device)
    batched, g_batched = _terms_and_gradients(
        model, rotator, lambda: geometric_terms(model, rotator, x, y, weights, cfg.presentation_chunk))
    loop, g_loop = _terms_and_gradients(
        model, rotator, lambda: geometric_terms_reference(model, rotator, x, y, weights))
    term, term_diff = _worst_term(batched, loop, lambda value: max(1.0, abs(value)))
    grad, grad_diff = _worst_gradient(g_batched, g_loop, relative=False)
    passed = term_diff <= GEOMETRIC_TOLERANCE and grad_diff <= GEOMETRIC_TOLERANCE
    detail = (f"worst term {term} {term_diff:.1e}, worst gradient {grad} {grad_diff:.1e} "
              f"(tolerance {GEOMETRIC_TOLERANCE:g})")
    return CheckResult(passed, detail,
                       data={"worst_term": term, "term_diff": term_diff, "worst_gradient": grad,
                             "gradient_diff": grad_diff, "loss": loop["loss"]})


def check_device_against_cpu(ctx: Context) -> CheckResult:
    device, cfg, run = ctx.device, ctx.settings.model, ctx.settings.run
    cpu_model, cpu_rotator = _state(ctx, torch.device("cpu"))
    model, rotator = _state(ctx, device)
    model.load_state_dict(cpu_model.state_dict())
    rotator.load_state_dict(cpu_rotator.state_dict())
    weights = LossWeights.from_settings(run, cfg)
    x, y = _batch(ctx, torch.device("cpu"))
    x_dev, y_dev = x.to(device), y.to(device)
    per_mode, passed, parts = {}, True, []
    chunk = cfg.presentation_chunk
    for mode in Mode:
        on_cpu, g_cpu = _terms_and_gradients(
            cpu_model, cpu_rotator, lambda: compute_terms(mode, cpu_model, cpu_rotator, x, y, weights, chunk))
        on_dev, g_dev = _terms_and_gradients(
            model, rotator, lambda: compute_terms(mode, model, rotator, x_dev, y_dev, weights, chunk))
        term, term_diff = _worst_term(on_dev, on_cpu, lambda value: max(abs(value), 1e-3))
        grad, grad_diff = _worst_gradient(g_dev, g_cpu, relative=True)
        ok = term_diff <= DEVICE_TOLERANCE and grad_diff <= DEVICE_TOLERANCE
        passed &= ok
        per_mode[mode.value] = {"worst_term": term, "term_rel_diff": term_diff, "worst_gradient": grad,
                                "gradient_rel_diff": grad_diff, "passed": ok}
        worst = grad if grad_diff > term_diff else term
        parts.append(f"{mode.value} {max(term_diff, grad_diff):.1e}" + ("" if ok else f" ({worst})"))
    detail = "worst relative difference: " + ", ".join(parts) + f" (tolerance {DEVICE_TOLERANCE:g})"
    return CheckResult(passed, detail, data=per_mode)


def check_corpus_in_qthread(ctx: Context) -> CheckResult:
    # A child process: a stack overflow kills the process, and this one must live to print the table.
    command = [sys.executable, str(Path(__file__).resolve()), "--corpus-in-qthread", str(ctx.settings.model.seq_len)]
    try:
        child = subprocess.run(command, capture_output=True, text=True, timeout=CORPUS_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        return CheckResult(False, f"no answer within {CORPUS_TIMEOUT_S} s")
    if child.returncode < 0:
        name = signal.Signals(-child.returncode).name
        return CheckResult(False, f"the process died of {name} (a stack overflow?)",
                           data={"stderr": child.stderr[-2000:]})
    try:
        result = json.loads(child.stdout.strip().splitlines()[-1])
    except (IndexError, json.JSONDecodeError):
        return CheckResult(False, f"exit code {child.returncode}: {child.stderr.strip()[-300:]}",
                           data={"stderr": child.stderr[-2000:]})
    stack = f"{result['stack_bytes'] // 1024} KiB" if result["stack_bytes"] else (
        "platform default (512 KiB on macOS)" if sys.platform == "darwin" else "platform default")
    if not result.get("ok"):
        return CheckResult(False, f"{result.get('error')}; thread stack: {stack}", data=result)
    detail = (f"{result['train_tokens']:,} + {result['val_tokens']:,} tokens in {result['seconds']:.2f} s; "
              f"thread stack: {stack}")
    return CheckResult(True, detail, data=result)


def corpus_in_qthread(seq_len: int) -> dict[str, Any]:
    """Build the embedded corpus in a QThread with the stack size the app's training thread gets."""
    from PySide6.QtCore import QCoreApplication, QObject, QThread, QTimer, Slot

    from geogui.gui.worker import TrainingSession

    app = QCoreApplication.instance() or QCoreApplication([])
    session = TrainingSession(Settings())  # never started: only its thread's set-up is read
    stack_bytes = session.worker_thread.stackSize()
    result: dict[str, Any] = {"ok": False, "error": "the thread did not finish", "stack_bytes": stack_bytes}

    class Loader(QObject):
        @Slot()
        def run(self) -> None:
            try:
                started = time.perf_counter()
                corpus = load_corpus(DataSettings(), seq_len)
                result.update(ok=True, error=None, train_tokens=len(corpus.train), val_tokens=len(corpus.val),
                              seconds=time.perf_counter() - started)
            except BaseException as exc:  # noqa: BLE001 - a RecursionError too is the answer
                result.update(error=f"{type(exc).__name__}: {exc}")
            finally:
                self.thread().quit()

    thread = QThread()
    thread.setObjectName("device-check-corpus")
    if stack_bytes:
        thread.setStackSize(stack_bytes)
    loader = Loader()
    loader.moveToThread(thread)
    thread.started.connect(loader.run)
    thread.finished.connect(app.quit)
    QTimer.singleShot(CORPUS_TIMEOUT_S * 1000, app.quit)
    thread.start()
    app.exec()
    if not thread.wait(1000):
        print(json.dumps(result), flush=True)
        os._exit(1)  # a thread still running cannot be stopped cleanly; the parent reads the line
    return result


def _run_mode(settings: Settings, mode: Mode, corpus) -> dict[str, Any]:
    settings = settings.model_copy(deep=True)
    settings.run.mode = mode
    trainer = Trainer(settings, corpus=corpus, on_nonfinite="stop")
    records, problems, status = [], [], None
    for event in trainer.run():
        if isinstance(event, BatchRecord):
            records.append(event)
        elif isinstance(event, RunEvent) and event.event in ("device_fallback", "nonfinite_loss"):
            problems.append(event.message)
        elif isinstance(event, RunFinished):
            status = event.status
    device = trainer.device_choice.device
    synchronize(device)
    times = [r.batch_time_s for r in records]
    losses = [r.loss for r in records]
    if status != "finished":
        problems.append(f"run {status}")
    if len(records) != settings.run.steps:
        problems.append(f"{len(records)} of {settings.run.steps} steps")
    if not all(math.isfinite(loss) for loss in losses):
        problems.append("non-finite loss")
    result = {
        "device": str(device), "step_times_s": times, "losses": losses,
        "first_step_s": times[0] if times else None,
        "median_step_s": statistics.median(times[1:]) if len(times) > 1 else None,
        "memory_bytes": max((r.memory_bytes for r in records), default=None),
        "driver_memory_bytes": driver_memory_bytes(device), "problems": problems,
    }
    del trainer
    if device.type == "mps":
        torch.mps.empty_cache()
    elif device.type == "cuda":
        torch.cuda.empty_cache()
    return result


def _mib(value: float | None) -> str:
    return "-" if value is None else f"{value / 2**20:.0f} MiB"


def _ms(seconds: float | None) -> str:
    return "-" if seconds is None else f"{seconds * 1000:.0f} ms"


def check_trainer(ctx: Context) -> CheckResult:
    corpus = load_corpus(ctx.settings.data, ctx.settings.model.seq_len)
    per_mode = {}
    for mode in Mode:
        try:
            per_mode[mode.value] = _run_mode(ctx.settings, mode, corpus)
        except Exception as exc:  # noqa: BLE001 - one mode crashing must not hide the others' timings
            per_mode[mode.value] = {"first_step_s": None, "median_step_s": None, "memory_bytes": None,
                                    "driver_memory_bytes": None, "step_times_s": [],
                                    "problems": [f"{type(exc).__name__}: {' '.join(str(exc).split())}"]}
    for mode, result in per_mode.items():
        first, median = result["first_step_s"], result["median_step_s"]
        print(f"    {mode:15s} step 1 {_ms(first)}, median of steps 2-{TRAINER_STEPS} {_ms(median)}, "
              f"memory {_mib(result['memory_bytes'])}, driver {_mib(result['driver_memory_bytes'])}"
              + (f"  PROBLEM: {'; '.join(result['problems'])}" if result["problems"] else ""))
    failed = {mode: result["problems"] for mode, result in per_mode.items() if result["problems"]}
    medians = ", ".join(f"{mode} {_ms(result['median_step_s'])}" for mode, result in per_mode.items())
    detail = f"median step: {medians}"
    if failed:
        detail = "; ".join(f"{mode}: {', '.join(problems)}" for mode, problems in failed.items()) + "; " + detail
    return CheckResult(not failed, detail, data=per_mode)


CHECKS: tuple[tuple[str, Callable[[Context], CheckResult]], ...] = (
    ("device", check_device),
    ("non-blocking copy", check_nonblocking_copy),
    ("geometric = loop", check_geometric_equivalence),
    ("device = CPU", check_device_against_cpu),
    ("corpus in QThread", check_corpus_in_qthread),
    ("trainer", check_trainer),
)


# --------------------------------------------------------------------------------------------------
# Running and reporting
# --------------------------------------------------------------------------------------------------


def run_check(name: str, check: Callable[[Context], CheckResult], ctx: Context) -> CheckResult:
    print(f"... {name}", flush=True)
    started = time.perf_counter()
    try:
        result = check(ctx)
    except Exception as exc:  # noqa: BLE001 - a crash in one check is that check's failure
        result = CheckResult(False, f"{type(exc).__name__}: {' '.join(str(exc).split())}",
                             data={"traceback": traceback.format_exc()})
    result.name, result.seconds = name, time.perf_counter() - started
    print(f"{'PASS' if result.passed else 'FAIL'} {result.name}: {result.detail} ({result.seconds:.1f} s)", flush=True)
    return result


def summary_table(results: list[CheckResult]) -> str:
    width = max(len(r.name) for r in results)
    lines = [f"{'check':{width}s}  result  time     detail", f"{'-' * width}  ------  -------  ------"]
    for r in results:
        lines.append(f"{r.name:{width}s}  {'pass' if r.passed else 'FAIL':6s}  {r.seconds:5.1f} s  {r.detail}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda", "mps"])
    parser.add_argument("--size", default="default", choices=sorted(SIZES),
                        help="default: the app's default model; tiny: a tiny model (for tests)")
    parser.add_argument("--tiny", action="store_const", const="tiny", dest="size", help="same as --size tiny")
    parser.add_argument("--json", type=Path, help="write the machine, every check and the timings to this file")
    parser.add_argument("--corpus-in-qthread", type=int, metavar="SEQ_LEN", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.corpus_in_qthread is not None:
        print(json.dumps(corpus_in_qthread(args.corpus_in_qthread)), flush=True)
        return 0

    started = time.perf_counter()
    size = SIZES[args.size]
    settings = make_settings(args.device, size)
    ctx = Context(settings, size, choose_device(args.device))
    info = machine_info(ctx)
    print(f"torch {info['torch']}, Python {info['python']}, {info['platform']}; device {info['device']} "
          f"(asked: {args.device}); {size.name} sizes: d_model {settings.model.d_model}, "
          f"{settings.model.n_layers} layers, seq {settings.model.seq_len}, batch {settings.run.batch_size}",
          flush=True)
    results = [run_check(name, check, ctx) for name, check in CHECKS]
    total = time.perf_counter() - started
    print()
    print(summary_table(results))
    failed = [r.name for r in results if not r.passed]
    print(f"\n{'FAILED: ' + ', '.join(failed) if failed else 'all checks passed'} in {total:.0f} s")
    if args.json:
        timings = next((r.data for r in results if r.name == "trainer"), {})
        report = {"machine": info, "passed": not failed, "seconds": total,
                  "checks": [asdict(r) for r in results], "timings": timings}
        args.json.write_text(json.dumps(report, indent=2, default=str) + "\n", encoding="utf-8")
        print(f"wrote {args.json}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
