"""Generation speed through Isengard's diffusers plugin against a direct FluxPipeline call, and LoRA switches.

Run: `.venv/bin/python bench/bench_generation.py [--repeats 15] [--size 128] [--steps 4] [--max-ratio 1.5]`.
Exits 3 when a bound is broken (see verdict.py).

On the same model (the tiny FLUX in fast-test mode, or --model FOLDER), in the same run:
- a warm generation through the plugin (request validation, trigger word, PNG with parameters, thumbnail,
  artifact registration) against `pipe(...)` on the same already-loaded pipeline, same size, steps and seed;
- switching between two LoRAs already resident (set_adapters), loading a new LoRA file into the resident
  pipeline, and, for scale, reloading the whole base pipeline (what a swap would cost without the cache).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))  # the in-process JobContext and the LoRA maker live in tests/support

import torch  # noqa: E402
from tests.support.image_jobs import make_test_lora  # noqa: E402
from tests.support.recording_context import RecordingContext  # noqa: E402
from verdict import exit_status  # noqa: E402

from isengard.domain import LoraRef  # noqa: E402
from isengard.models.tiny import save_tiny_model  # noqa: E402
from isengard.plugins.image.diffusers_flux import DiffusersFluxGenerator, PipelineCache, activate_loras  # noqa: E402


def timed(action: Callable[[], object], repeats: int) -> list[float]:
    samples = []
    for _ in range(repeats):
        started = time.perf_counter()
        action()
        samples.append(time.perf_counter() - started)
    return samples


def ms(samples: list[float]) -> str:
    return f"{statistics.median(samples) * 1000:8.2f} ms (min {min(samples) * 1000:.2f})"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--steps", type=int, default=4)
    parser.add_argument("--model", type=Path, default=None, help="a FLUX folder (default: the tiny model)")
    parser.add_argument("--max-ratio", type=float, default=1.5, help="bound on plugin time / direct time")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="isengard-bench-") as tmp:
        data_dir = Path(tmp) / "data"
        model = args.model or save_tiny_model(Path(tmp) / "tiny-flux")
        loras = [make_test_lora(model, data_dir / "loras" / "bench" / f"l{i}.safetensors", seed=i) for i in range(3)]
        cache = PipelineCache()
        plugin = DiffusersFluxGenerator(cache=cache)
        ctx = RecordingContext(data_dir, model)
        request = {"prompt": "a portrait", "width": args.size, "height": args.size, "steps": args.steps, "seed": 1}

        plugin.run(ctx, request)  # warm: loads the base pipeline once
        loaded = cache.loaded
        assert loaded is not None
        pipe = loaded.pipe

        def direct() -> object:
            generator = torch.Generator(device="cpu").manual_seed(1)
            with torch.inference_mode():
                return pipe(prompt="a portrait", width=args.size, height=args.size, num_inference_steps=args.steps,
                            guidance_scale=3.5, generator=generator).images[0]  # fmt: skip

        # Interleave so both see the same machine load.
        plugin_samples: list[float] = []
        direct_samples: list[float] = []
        for _ in range(args.repeats):
            direct_samples += timed(direct, 1)
            plugin_samples += timed(lambda: plugin.run(ctx, request), 1)
        ratio = statistics.median(plugin_samples) / statistics.median(direct_samples)

        # LoRA switches on the resident pipeline.
        refs = [(path, 1.0) for path in loras]
        activate_loras(loaded, refs[:1], cache.max_loras)
        activate_loras(loaded, refs[1:2], cache.max_loras)
        flip = iter(range(10**9))
        switch = timed(lambda: activate_loras(loaded, [refs[next(flip) % 2]], cache.max_loras), args.repeats * 4)

        def load_new() -> None:
            name = next(iter(loaded.adapters.values()))
            pipe.delete_adapters(name)
            loaded.adapters.clear()
            activate_loras(loaded, refs[2:3], cache.max_loras)

        load_fresh = timed(load_new, args.repeats)
        reload_base = timed(lambda: PipelineCache().get(model), 3)
        with_lora = {
            **request,
            "loras": [LoraRef(lora_id="a", path=loras[0].relative_to(data_dir).as_posix()).model_dump()],
        }
        plugin.run(ctx, with_lora)
        assert cache.loads == 1, "the base pipeline was reloaded"

    print(f"model: {'tiny FLUX (fast-test)' if args.model is None else args.model}, {args.size} px, {args.steps} steps")
    print(f"direct FluxPipeline call       {ms(direct_samples)}")
    print(f"through the Isengard plugin    {ms(plugin_samples)}   ratio {ratio:.2f} (bound {args.max_ratio})")
    print(f"switch between resident LoRAs  {ms(switch)}")
    print(f"load a new LoRA file           {ms(load_fresh)}")
    print(f"reload the base pipeline       {ms(reload_base)}   (what every swap would cost without the cache)")
    ok = ratio <= args.max_ratio and statistics.median(switch) < statistics.median(reload_base)
    print("OK" if ok else "BOUND BROKEN")
    return exit_status(broken=not ok)


if __name__ == "__main__":
    raise SystemExit(main())
