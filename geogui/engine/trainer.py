"""The one training loop. It does no I/O: it yields typed events and the caller (the app's worker or
the headless CLI) decides what to log, plot or save.

Controls (pause, resume, stop, mode and penalty-weight changes) may be called from any thread; they
take effect at the next batch boundary.
"""

from __future__ import annotations

import contextlib
import math
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, ContextManager, Iterator, Literal, Protocol

import numpy as np
import torch

from geogui.engine.checkpoint import load_checkpoint
from geogui.engine.control_file import Command, Rejected, apply_command
from geogui.engine.data import VOCAB_SIZE, Corpus, load_corpus
from geogui.engine.device import (
    DeviceChoice,
    choose_device,
    driver_memory_bytes,
    free_memory_bytes,
    memory_bytes,
    synchronize,
)
from geogui.engine.memory_estimate import refuse_if_too_big
from geogui.engine.metrics import (
    BatchRecord,
    EvalRecord,
    ModeChange,
    RunEvent,
    RunFinished,
    RunStarted,
    TrainerEvent,
)
from geogui.engine.model import MoETransformer, default_dispatch
from geogui.engine.modes import TERM_NAMES, LossWeights, compute_terms
from geogui.engine.optimizers import build_optimizers, make_fused, step_unless
from geogui.engine.distributed.replicas import Replicas, SingleProcess
from geogui.engine.rotation import DataRotator
from geogui.engine.step_options import PRECISION_FALLBACK, CompiledTerms, autocast_for
from geogui.engine.transfer import PackedValues, stage
from geogui.settings import Mode, Settings

NonFiniteAction = Literal["pause", "stop"]
COMMAND_POLL_S = 0.5  # how often a paused run looks for commands from outside (a control file)


class CommandSource(Protocol):
    def poll(self) -> list[Command | Rejected]:
        """Commands from outside the process since the last poll; under DDP, the same on every rank."""


def model_lr(step: int, peak: float, warmup: int, total: int) -> float:
    """Linear warm-up to `peak`, then cosine decay to a tenth of it at `total`."""
    if step <= warmup:
        return peak * step / max(1, warmup)
    progress = min(1.0, (step - warmup) / max(1, total - warmup))
    return peak * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * progress)))


def rotation_lr(step: int, peak: float, total: int) -> float:
    """Cosine decay from `peak` to a tenth of it at `total` (the rotator needs no warm-up)."""
    progress = min(1.0, max(0, step - 1) / max(1, total - 1))
    return peak * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * progress)))


@dataclass
class TrainingState:
    """Everything a run trains or advances; what a checkpoint must hold."""

    model: MoETransformer
    rotator: DataRotator
    model_optimizer: torch.optim.Optimizer
    rotation_optimizer: torch.optim.Optimizer
    batch_generator: torch.Generator
    mode: Mode
    penalty_weight: float
    step: int = 0
    tokens_seen: int = 0


def build_state(settings: Settings, device: torch.device) -> TrainingState:
    """Model, rotator and both optimizers, seeded so that a run is reproducible on CPU."""
    torch.manual_seed(settings.run.seed)
    cfg = settings.model
    model = MoETransformer(cfg, VOCAB_SIZE).to(device)
    model.set_dispatch(default_dispatch(device.type))
    rotator = DataRotator(cfg.presentations, cfg.rotation_dimensions, cfg.d_model, cfg.max_rotation).to(device)
    model_optimizer, rotation_optimizer = build_optimizers(model, rotator, settings.run)
    generator = torch.Generator().manual_seed(settings.run.seed)
    return TrainingState(model, rotator, model_optimizer, rotation_optimizer, generator,
                         settings.run.mode, settings.run.penalty_weight)


class Trainer:
    def __init__(self, settings: Settings, *, on_nonfinite: NonFiniteAction = "pause", corpus: Corpus | None = None,
                 resume_from: Path | None = None, replicas: Replicas | None = None,
                 commands: CommandSource | None = None):
        self.settings = settings
        self.replicas = replicas or SingleProcess()
        self.commands = commands
        self.resume_from = resume_from
        self.on_nonfinite = on_nonfinite
        self._corpus = corpus
        self._lock = threading.Condition()
        self._paused = False
        self._stop_requested = False
        self._requested_mode: Mode | None = None
        self._requested_penalty_weight: float | None = None
        self.state: TrainingState | None = None
        self.device_choice: DeviceChoice | None = None
        self._autocast: Callable[[], ContextManager] = contextlib.nullcontext  # the loss's precision
        self._compiled: CompiledTerms | None = None  # the compiled loss, when the settings ask for it

    # ---- controls: safe from any thread ----
    def pause(self) -> None:
        with self._lock:
            self._paused = True

    def resume(self) -> None:
        with self._lock:
            self._paused = False
            self._lock.notify_all()

    def stop(self) -> None:
        with self._lock:
            self._stop_requested = True
            self._lock.notify_all()

    def request_mode(self, mode: Mode | str) -> None:
        with self._lock:
            self._requested_mode = Mode(mode)

    def request_penalty_weight(self, weight: float) -> None:
        weight = float(weight)
        if not (math.isfinite(weight) and weight >= 0):
            raise ValueError(f"penalty weight must be a finite number >= 0, got {weight}")
        with self._lock:
            self._requested_penalty_weight = weight

    @property
    def paused(self) -> bool:
        with self._lock:
            return self._paused

    # ---- the loop ----
    def run(self) -> Iterator[TrainerEvent]:
        settings = self.settings
        corpus = self._corpus or load_corpus(settings.data, settings.model.seq_len)
        self.device_choice = choice = choose_device(settings.device.device)
        free = free_memory_bytes(choice.device)
        if free is not None:  # the caller checked the host's memory; a GPU has its own
            refuse_if_too_big(settings, free, choice.device.type)
        self.state = state = build_state(settings, choice.device)
        if self.resume_from is not None:
            load_checkpoint(self.resume_from, state, settings.model)
            make_fused(state.model_optimizer)
            make_fused(state.rotation_optimizer)
        total = settings.run.steps
        yield RunStarted(
            device=str(choice.device), requested_device=choice.requested, parameters=state.model.num_parameters()
            + sum(p.numel() for p in state.rotator.parameters()), total_steps=total,
            train_tokens=len(corpus.train), val_tokens=len(corpus.val), data_source=corpus.source,
            presentations=settings.model.presentations, rotation_dimensions=settings.model.rotation_dimensions,
            expert_names=tuple(f"E{i}" for i in range(settings.model.num_experts))
            + tuple(f"G{i}" for i in range(settings.model.num_ghost_experts)),
            start_step=state.step,
        )
        if choice.fallback_reason:
            yield RunEvent(state.step, "device_fallback", choice.fallback_reason)
        self._autocast, precision_notice = autocast_for(choice.device, settings.device.precision)
        if precision_notice:
            yield RunEvent(state.step, PRECISION_FALLBACK, precision_notice)
        if settings.device.compile_step:
            if self.replicas.world_size > 1:
                yield RunEvent(state.step, "compile_failed",
                               "the step is not compiled under torchrun (DistributedDataParallel); it runs uncompiled")
            else:
                self._compiled = CompiledTerms()
        if self.resume_from is not None:
            yield RunEvent(state.step, "resumed_from_checkpoint",
                           f"resumed from the checkpoint at step {state.step} ({state.mode.value})")

        started = time.perf_counter()
        status = "finished"
        while state.step < total:
            step = state.step + 1
            yield from self._take_commands(step)
            yield from self._wait_while_paused(step)
            yield from self._apply_requests(state, step)  # after a pause: what was asked during it counts
            if self._stop_requested:
                status = "stopped"
                break

            record, events = self._train_batch(state, corpus, step, started)
            yield from events
            if record is None:  # non-finite loss or gradient: the update was skipped
                if self.on_nonfinite == "stop":
                    status = "failed"
                    break
                self.pause()
                continue
            yield record
            if step % settings.run.eval_interval == 0 or step == total:
                yield self._evaluate(state, corpus, step)
        yield RunFinished(state.step, status)

    def _apply_requests(self, state: TrainingState, step: int) -> Iterator[ModeChange]:
        with self._lock:
            mode, weight = self._requested_mode, self._requested_penalty_weight
            self._requested_mode = self._requested_penalty_weight = None
        new_mode = mode if mode is not None else state.mode
        new_weight = weight if weight is not None else state.penalty_weight
        if new_mode is not state.mode or new_weight != state.penalty_weight:
            change = ModeChange(step, new_mode.value, new_weight, state.mode.value, state.penalty_weight)
            state.mode, state.penalty_weight = new_mode, new_weight
            yield change

    def _take_commands(self, step: int) -> Iterator[RunEvent]:
        """Act on commands from outside (geogui-control) as on the app's clicks; log each bad one."""
        for command in self.commands.poll() if self.commands is not None else ():
            if isinstance(command, Rejected):
                yield RunEvent(step - 1, "control_rejected", command.reason)
                continue
            apply_command(command, self)

    def _wait_while_paused(self, step: int) -> Iterator[RunEvent]:
        with self._lock:
            if not self._paused or self._stop_requested:
                return
        yield RunEvent(step - 1, "paused", f"paused after step {step - 1}")
        while self.paused and not self._stop_requested:
            with self._lock:
                if self._paused and not self._stop_requested:
                    self._lock.wait(COMMAND_POLL_S if self.commands is not None else None)
            # Every rank polls here equally often: only commands change a replica's pause.
            yield from self._take_commands(step)
        if not self._stop_requested:
            yield RunEvent(step - 1, "resumed", f"resumed at step {step}")

    def _train_batch(
        self, state: TrainingState, corpus: Corpus, step: int, started: float
    ) -> tuple[BatchRecord | None, list[RunEvent]]:
        """One step, queued on the device without a single host sync until its one record transfer.

        The optimizer steps are queued before the loss has been looked at, told to skip on the
        device if any term or the gradient norm is not finite; the host then reads every number
        of the record in one copy, which also waits for the whole step (honest timing)."""
        run, cfg = self.settings.run, self.settings.model
        device = self.device_choice.device
        model, rotator, mode = state.model, state.rotator, state.mode

        t_start = time.perf_counter()
        batch = stage(*self.replicas.batch(corpus.train, run.batch_size, cfg.seq_len, state.batch_generator), device)
        t_data = time.perf_counter()

        lr_model = model_lr(step, run.learning_rate, run.warmup_steps, run.steps)
        lr_rotation = rotation_lr(step, run.rotation_learning_rate, run.steps) if mode.uses_rotator else 0.0
        for group in state.model_optimizer.param_groups:
            group["lr"] = lr_model
        for group in state.rotation_optimizer.param_groups:
            group["lr"] = lr_rotation

        state.model_optimizer.zero_grad(set_to_none=True)
        state.rotation_optimizer.zero_grad(set_to_none=True)
        weights = LossWeights(state.penalty_weight, run.orthogonality_weight, run.specialization_weight,
                              cfg.aux_loss_weight)
        loss_terms = self._compiled or self.replicas.loss_terms
        with self._autocast():
            terms = loss_terms(mode, model, rotator, batch.x, batch.y, weights, cfg.presentation_chunk)
        compile_events = [RunEvent(step, event.kind, event.message) for event in self._compiled.take_events()] \
            if self._compiled is not None else []
        self.replicas.backward(terms.loss)
        trained = list(model.parameters()) + (list(rotator.parameters()) if mode.uses_rotator else [])
        trained = [p for p in trained if p.grad is not None]
        if run.grad_clip > 0:
            grad_norm = torch.nn.utils.clip_grad_norm_(trained, run.grad_clip, foreach=True)
        else:
            grad_norm = torch.nn.utils.get_total_norm([p.grad for p in trained], foreach=True)

        # Every number the record needs, as means over ranks; the angles before this step's update.
        record = PackedValues(
            terms=torch.stack([getattr(terms, name).float() for name in TERM_NAMES]),  # bf16 terms under autocast
            grad_norm=grad_norm.view(1), expert_slots=terms.expert_slots,
            layer_overflow=terms.routing.overflow(cfg.capacity_factor, cfg.num_experts)
            if terms.routing is not None else terms.loss.new_zeros(0),
            angles=rotator.angles().detach(),
        )
        reduced = self.replicas.mean(record.packed)
        head = reduced[: len(TERM_NAMES) + 1]
        skip = (~torch.isfinite(head).all()).float()
        step_unless(state.model_optimizer, skip)
        if mode.uses_rotator:
            step_unless(state.rotation_optimizer, skip)
        host = record.to_host(reduced)  # the step's one device-to-host copy: it waits for the step
        batch.release()
        synchronize(device)  # nothing is left queued; on a GPU this returns at once
        t_end = time.perf_counter()

        values = dict(zip(TERM_NAMES, host["terms"].tolist()))
        grad_value = float(host["grad_norm"][0])
        bad = [f"{name} = {value}" for name, value in values.items() if not math.isfinite(value)]
        if not math.isfinite(grad_value):
            bad.append(f"gradient norm = {grad_value}")
        if bad:  # the optimizers skipped the update on the device
            state.model_optimizer.zero_grad(set_to_none=True)
            state.rotation_optimizer.zero_grad(set_to_none=True)
            message = f"non-finite at step {step} ({mode.value}): {', '.join(bad)}; the update was skipped"
            return None, compile_events + [RunEvent(step, "nonfinite_loss", message)]
        batch_time, step_time = self.replicas.slowest(t_end - t_data, t_end - t_start)

        state.step = step
        tokens = run.batch_size * cfg.seq_len * self.replicas.world_size
        state.tokens_seen += tokens
        slots = host["expert_slots"]

        events = compile_events
        layers = model.moe_layers
        if terms.routing is not None:  # the wake-up rule reads router statistics, which only a routed pass has
            for index, (layer, layer_value) in enumerate(zip(layers, host["layer_overflow"])):
                woke = layer.update_ghosts(float(layer_value))
                if woke is not None:
                    events.append(RunEvent(step, "ghost_woke",
                                           f"layer {index}: ghost expert G{woke} woke (primary experts saturated)"))
        record = BatchRecord(
            step=step, epoch=state.tokens_seen / len(corpus.train), mode=mode.value,
            penalty_weight=state.penalty_weight, batch_time_s=batch_time, data_time_s=t_data - t_start,
            loss=values["loss"], task_loss=values["task_loss"], aux_loss=values["aux_loss"],
            penalty=values["penalty"], orthogonality=values["orthogonality"],
            specialization=values["specialization"], lr_model=lr_model, lr_rotation=lr_rotation,
            rotation_angles=host["angles"] if mode.uses_rotator else None,
            expert_load=slots / max(slots.sum(), 1.0),
            ghost_activation=np.mean([layer.ghost_activation for layer in layers], axis=0)
            if cfg.num_ghost_experts else np.zeros(0),
            saturation=float(np.mean([layer.saturation for layer in layers])),
            tokens_per_s=tokens / step_time, tokens_seen=state.tokens_seen,
            memory_bytes=memory_bytes(device), wall_time_s=t_end - started,
            driver_memory_bytes=driver_memory_bytes(device),
        )
        return record, events

    @torch.no_grad()
    def _evaluate(self, state: TrainingState, corpus: Corpus, step: int) -> EvalRecord:
        """Held-out task loss in the current mode, on the same batches every time (a fixed generator).
        The batches' losses stay on the device until one read at the end."""
        run, cfg = self.settings.run, self.settings.model
        device = self.device_choice.device
        generator = torch.Generator().manual_seed(run.seed + 1)
        weights = LossWeights(state.penalty_weight, run.orthogonality_weight, run.specialization_weight,
                              cfg.aux_loss_weight)
        losses, batches = [], []
        for _ in range(run.eval_batches):
            batch = stage(*self.replicas.batch(corpus.val, run.batch_size, cfg.seq_len, generator), device)
            batches.append(batch)  # kept until the read below has drained the queue (MPS)
            with self._autocast():
                terms = compute_terms(state.mode, state.model, state.rotator, batch.x, batch.y, weights,
                                      cfg.presentation_chunk)
            losses.append(terms.task_loss)
        loss = float(self.replicas.mean(torch.stack(losses).mean().view(1)).to("cpu", copy=True).numpy()[0])
        for batch in batches:
            batch.release()
        return EvalRecord(step, loss, math.exp(loss) if loss < 700 else math.inf)
