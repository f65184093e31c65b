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
from pathlib import Path
from typing import Callable, ContextManager, Generator, Iterator, Literal, Protocol

import torch

from geogui.engine.batch_record import StepTimes, batch_record
from geogui.engine.checkpoint import load_checkpoint
from geogui.engine.control_file import Command, Rejected, apply_command
from geogui.engine.data import Corpus, load_corpus
from geogui.engine.device import (
    DeviceChoice,
    choose_device,
    free_memory_bytes,
    synchronize,
)
from geogui.engine.distributed.replicas import Replicas, SingleProcess
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
from geogui.engine.modes import LossTerms, LossWeights, compute_terms
from geogui.engine.optimizers import make_fused, step_unless
from geogui.engine.router_watch import RouterWatch
from geogui.engine.run_samples import RunSamples
from geogui.engine.samples import AccuracyRecord
from geogui.engine.sample_request import SampleRequest, SampleServer
from geogui.engine.state import TrainingState, build_state
from geogui.engine.step_options import PRECISION_FALLBACK, CompiledTerms, autocast_for
from geogui.engine.step_values import StepLayout
from geogui.engine.transfer import StagedBatch, stage, to_host
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
        self._run_samples: RunSamples | None = None
        self._lock = threading.Condition()
        self._paused = False
        self._stop_requested = False
        self._requested_mode: Mode | None = None
        self._requested_penalty_weight: float | None = None
        self._samples = SampleServer()  # samples asked for from outside, taken between batches
        self.state: TrainingState | None = None
        self.device_choice: DeviceChoice | None = None
        self._autocast: Callable[[], ContextManager] = contextlib.nullcontext  # the loss's precision
        self._compiled: CompiledTerms | None = None  # the compiled loss, when the settings ask for it
        self._layout: StepLayout | None = None  # where each of a step's numbers lies in its one transfer

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

    def request_sample(self, request: SampleRequest) -> None:
        """Answered with a SampleRecord event between batches, or at once while paused."""
        with self._lock:
            self._samples.add(request)
            self._lock.notify_all()

    @property
    def paused(self) -> bool:
        with self._lock:
            return self._paused

    def closing_checks(self, evaluated: bool) -> list[EvalRecord | AccuracyRecord]:
        """The held-out loss now (unless this step was `evaluated`) and the answer accuracy (unless
        it was checked at this step), as the run's last evaluation makes them: for a caller that ends
        a run between its evaluations (a wall-time budget). Between two events of `run`, in its thread."""
        state = self.state
        loss = [] if evaluated else [self._evaluate(state, self._corpus, state.step)]
        return [*loss, *self._run_samples.after_evaluation(state, state.step, last=True)]

    # ---- the loop ----
    def run(self) -> Iterator[TrainerEvent]:
        settings = self.settings
        # Kept: evaluate() reads it.
        corpus = self._corpus = self._corpus or load_corpus(settings.data, settings.model.seq_len)
        self._samples.corpus = corpus  # a request without a prompt continues its first held-out question
        # Kept: closing_checks() reads it.
        samples = self._run_samples = RunSamples(settings.sampling, corpus, settings.model.seq_len, settings.run.seed,
                                                 self.replicas)
        state = yield from self._start(corpus, samples)
        total = settings.run.steps
        started = time.perf_counter()
        status = "finished"
        while state.step < total:
            step = state.step + 1
            yield from self._take_commands(step)
            yield from self._samples.serve(state, self._lock)
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
            yield record  # the caller saves checkpoints on batch records, at its own interval
            if step % settings.run.eval_interval == 0 or step == total:
                yield self._evaluate(state, corpus, step)
                yield from samples.after_evaluation(state, step, step == total)  # untimed, as the evaluation
            yield from samples.after_step(state, step)
        yield RunFinished(state.step, status)

    def _start(self, corpus: Corpus, samples: RunSamples) -> Generator[TrainerEvent, None, TrainingState]:
        """The device, the state (from the checkpoint when resuming) and the run's opening events."""
        settings = self.settings
        self.device_choice = choice = choose_device(settings.device.device)
        free = free_memory_bytes(choice.device)
        if free is not None:  # the caller checked the host's memory; a GPU has its own
            refuse_if_too_big(settings, free, choice.device.type)
        self.state = state = build_state(settings, choice.device)
        self._layout = StepLayout(settings.model)
        self._router_watch = RouterWatch(settings.model, settings.run.dead_expert_steps)
        if self.resume_from is not None:
            load_checkpoint(self.resume_from, state, settings.model)
            make_fused(state.model_optimizer)
            make_fused(state.rotation_optimizer)
        yield RunStarted(
            device=str(choice.device), requested_device=choice.requested, parameters=state.model.num_parameters()
            + sum(p.numel() for p in state.rotator.parameters()), total_steps=settings.run.steps,
            train_tokens=len(corpus.train), val_tokens=len(corpus.val), data_source=corpus.source,
            presentations=settings.model.presentations, rotation_dimensions=settings.model.rotation_dimensions,
            expert_names=settings.model.expert_names, start_step=state.step, heldout_prompt=samples.prompt,
            heldout_answer=samples.question.answer if samples.question is not None else None,
            max_rotation=settings.model.max_rotation,
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
        return state

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
                if self._paused and not self._stop_requested and not self._samples.pending:
                    self._lock.wait(COMMAND_POLL_S if self.commands is not None else None)
            # Every rank polls here equally often: only commands change a replica's pause.
            yield from self._take_commands(step)
            yield from self._samples.serve(self.state, self._lock)
        if not self._stop_requested:
            yield RunEvent(step - 1, "resumed", f"resumed at step {step}")

    # ---- one training step ----
    def _train_batch(
        self, state: TrainingState, corpus: Corpus, step: int, started: float
    ) -> tuple[BatchRecord | None, list[RunEvent]]:
        """One step, queued on the device without a single host sync until its one record transfer.

        The optimizer steps are queued before the loss has been looked at, told to skip on the
        device if any term or the gradient norm is not finite; the host then reads every number
        of the record in one copy, which also waits for the whole step (honest timing)."""
        run, cfg = self.settings.run, self.settings.model
        device = self.device_choice.device
        lr_model, lr_rotation = self._set_learning_rates(state, step)

        t_start = time.perf_counter()
        batch = stage(*self.replicas.batch(corpus.train, run.batch_size, cfg.seq_len, state.batch_generator), device)
        t_data = time.perf_counter()

        terms, events = self._forward_backward(state, batch, step)
        grad_norm = self._clip_gradients(state)
        # Every number the record needs, as means over ranks; the angles before this step's update.
        reduced = self.replicas.mean(self._layout.pack(terms, grad_norm, state.rotator))
        self._step_optimizers(state, reduced)

        # The GPU sync point: the step's one device-to-host copy waits for everything queued above,
        # so the clock read after it times the whole step.
        values = self._layout.unpack(to_host(reduced), routed=terms.routing is not None)
        batch.release()
        synchronize(device)  # nothing is left queued; on a GPU this returns at once
        t_end = time.perf_counter()

        nonfinite = values.nonfinite()
        if nonfinite:  # the optimizers skipped the update on the device
            state.model_optimizer.zero_grad(set_to_none=True)
            state.rotation_optimizer.zero_grad(set_to_none=True)
            message = f"non-finite at step {step} ({state.mode.value}): {', '.join(nonfinite)}; the update was skipped"
            return None, events + [RunEvent(step, "nonfinite_loss", message)]
        batch_time, step_time = self.replicas.slowest(t_end - t_data, t_end - t_start)

        state.step = step
        tokens = run.batch_size * cfg.seq_len * self.replicas.world_size
        state.tokens_seen += tokens
        # Only a routed pass has router statistics: the per-layer numbers, the ghosts' wake-up rule.
        routing, watched = self._router_watch.after_step(state.model, step, values.layer_slots)
        times = StepTimes(batch=batch_time, data=t_data - t_start, tokens_per_s=tokens / step_time,
                          wall=t_end - started)
        record = batch_record(state, len(corpus.train), values, routing, (lr_model, lr_rotation), times, device)
        return record, events + watched

    def _set_learning_rates(self, state: TrainingState, step: int) -> tuple[float, float]:
        """This step's (model, rotator) learning rates, set on the optimizers; the rotator's is 0 when
        the mode does not train it."""
        run = self.settings.run
        lr_model = model_lr(step, run.learning_rate, run.warmup_steps, run.steps)
        lr_rotation = rotation_lr(step, run.rotation_learning_rate, run.steps) if state.mode.uses_rotator else 0.0
        for group in state.model_optimizer.param_groups:
            group["lr"] = lr_model
        for group in state.rotation_optimizer.param_groups:
            group["lr"] = lr_rotation
        return lr_model, lr_rotation

    def _weights(self, state: TrainingState) -> LossWeights:
        run, cfg = self.settings.run, self.settings.model
        return LossWeights(state.penalty_weight, run.orthogonality_weight, run.specialization_weight,
                           cfg.aux_loss_weight)

    def _forward_backward(self, state: TrainingState, batch: StagedBatch,
                          step: int) -> tuple[LossTerms, list[RunEvent]]:
        """The mode's loss terms, with their gradients in .grad; and what the compiler had to say."""
        state.model_optimizer.zero_grad(set_to_none=True)
        state.rotation_optimizer.zero_grad(set_to_none=True)
        loss_terms = self._compiled or self.replicas.loss_terms
        with self._autocast():
            terms = loss_terms(state.mode, state.model, state.rotator, batch.x, batch.y, self._weights(state),
                               self.settings.model.presentation_chunk)
        events = [RunEvent(step, event.kind, event.message) for event in self._compiled.take_events()] \
            if self._compiled is not None else []
        self.replicas.backward(terms.loss)
        return terms, events

    def _clip_gradients(self, state: TrainingState) -> torch.Tensor:
        """The norm of the gradients this mode trains (a device scalar), clipped to grad_clip when set."""
        grad_clip = self.settings.run.grad_clip
        trained = list(state.model.parameters()) + (list(state.rotator.parameters()) if state.mode.uses_rotator else [])
        trained = [p for p in trained if p.grad is not None]
        if grad_clip > 0:
            return torch.nn.utils.clip_grad_norm_(trained, grad_clip, foreach=True)
        return torch.nn.utils.get_total_norm([p.grad for p in trained], foreach=True)

    def _step_optimizers(self, state: TrainingState, reduced: torch.Tensor) -> None:
        """Queue the optimizer steps, skipped on the device unless every term and the gradient norm
        (over all ranks) are finite: no host read decides it."""
        skip = (~torch.isfinite(reduced[self._layout.checked]).all()).float()
        step_unless(state.model_optimizer, skip)
        if state.mode.uses_rotator:
            step_unless(state.rotation_optimizer, skip)

    # ---- evaluation ----
    @torch.no_grad()
    def _evaluate(self, state: TrainingState, corpus: Corpus, step: int) -> EvalRecord:
        """Held-out task loss in the current mode, on the same batches every time (a fixed generator).
        The batches' losses stay on the device until one read at the end."""
        run, cfg = self.settings.run, self.settings.model
        device = self.device_choice.device
        generator = torch.Generator().manual_seed(run.seed + 1)
        weights = self._weights(state)
        losses, batches = [], []
        for _ in range(run.eval_batches):
            batch = stage(*self.replicas.batch(corpus.val, run.batch_size, cfg.seq_len, generator), device)
            batches.append(batch)  # kept until the read below has drained the queue (MPS)
            with self._autocast():
                terms = compute_terms(state.mode, state.model, state.rotator, batch.x, batch.y, weights,
                                      cfg.presentation_chunk)
            losses.append(terms.task_loss)
        # The evaluation's one device-to-host copy (its sync point).
        loss = float(to_host(self.replicas.mean(torch.stack(losses).mean().view(1)))[0])
        for batch in batches:
            batch.release()
        return EvalRecord(step, loss, math.exp(loss) if loss < 700 else math.inf)
