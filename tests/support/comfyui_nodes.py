"""The node definitions of the ComfyUI stand-in, as ComfyUI describes them in `GET /object_info`, and its prompt
validation as 0.3.64 does it (`execution.validate_prompt`): required inputs, linked output types, number conversion
and bounds, choice lists, optional inputs checked when given; an unknown node type refuses the whole prompt.

FLUX.1's nodes are 0.3.64's. FLUX.2 [klein]'s (`EmptyFlux2LatentImage`, `Flux2Scheduler` in comfy_extras/nodes_flux.py,
`CLIPLoader` type `flux2`) came with ComfyUI's FLUX.2 support (November 2025); their inputs are written as there,
beside the custom-sampling nodes their workflows use (`RandomNoise`, `KSamplerSelect`, `CFGGuider`,
`SamplerCustomAdvanced`, comfy_extras/nodes_custom_sampler.py).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

SAMPLERS = [
    "euler", "euler_cfg_pp", "euler_ancestral", "euler_ancestral_cfg_pp", "heun", "heunpp2", "dpm_2",
    "dpm_2_ancestral", "lms", "dpm_fast", "dpm_adaptive", "dpmpp_2s_ancestral", "dpmpp_2s_ancestral_cfg_pp",
    "dpmpp_sde", "dpmpp_sde_gpu", "dpmpp_2m", "dpmpp_2m_cfg_pp", "dpmpp_2m_sde", "dpmpp_2m_sde_gpu", "dpmpp_3m_sde",
    "dpmpp_3m_sde_gpu", "ddpm", "lcm", "ipndm", "ipndm_v", "deis", "res_multistep", "res_multistep_cfg_pp",
    "res_multistep_ancestral", "res_multistep_ancestral_cfg_pp", "gradient_estimation", "er_sde", "seeds_2",
    "seeds_3", "ddim", "uni_pc", "uni_pc_bh2",
]  # fmt: skip
SCHEDULERS = ["simple", "sgm_uniform", "karras", "exponential", "ddim_uniform", "beta", "normal",
              "linear_quadratic", "kl_optimal"]  # fmt: skip
CLIP_TYPES = ["sdxl", "sd3", "flux", "hunyuan_video", "hidream", "hunyuan_image"]  # DualCLIPLoader's
SINGLE_CLIP_TYPES = ["stable_diffusion", "stable_cascade", "sd3", "stable_audio", "mochi", "ltxv", "pixart", "cosmos",
                     "lumina2", "wan", "hidream", "chroma", "ace", "omnigen2", "qwen_image", "hunyuan_image", "flux2",
                     "ovis"]  # fmt: skip
MAX_RESOLUTION = 16384

Spec = dict[str, Any]


def node_specs(models: Callable[[str], list[str]]) -> dict[str, Spec]:
    """Every node the stand-in knows, with the model lists as the server sees them now."""

    def size(default: int) -> list[Any]:
        return ["INT", {"default": default, "min": 16, "max": MAX_RESOLUTION, "step": 16}]

    seed = ["INT", {"default": 0, "min": 0, "max": 0xFFFFFFFFFFFFFFFF, "control_after_generate": True}]
    cfg = ["FLOAT", {"default": 8.0, "min": 0.0, "max": 100.0, "step": 0.1, "round": 0.01}]
    # Optional inputs, by node: validated when a prompt gives them, as ComfyUI does.
    optional: dict[str, dict[str, Any]] = {"CLIPLoader": {"device": [["default", "cpu"], {"advanced": True}]}}
    specs: dict[str, tuple[dict[str, Any], list[str], bool]] = {
        "UNETLoader": (
            {"unet_name": [models("diffusion_models")],
             "weight_dtype": [["default", "fp8_e4m3fn", "fp8_e4m3fn_fast", "fp8_e5m2"]]},
            ["MODEL"], False,
        ),
        "DualCLIPLoader": (
            {"clip_name1": [models("text_encoders")], "clip_name2": [models("text_encoders")],
             "type": [CLIP_TYPES]},
            ["CLIP"], False,
        ),
        "CLIPLoader": (
            {"clip_name": [models("text_encoders")], "type": [SINGLE_CLIP_TYPES]},
            ["CLIP"], False,
        ),
        "VAELoader": ({"vae_name": [models("vae")]}, ["VAE"], False),
        "LoraLoaderModelOnly": (
            {"model": ["MODEL"], "lora_name": [models("loras")],
             "strength_model": ["FLOAT", {"default": 1.0, "min": -100.0, "max": 100.0, "step": 0.01}]},
            ["MODEL"], False,
        ),
        "CLIPTextEncode": (
            {"text": ["STRING", {"multiline": True, "dynamicPrompts": True}], "clip": ["CLIP"]},
            ["CONDITIONING"], False,
        ),
        "FluxGuidance": (
            {"conditioning": ["CONDITIONING"],
             "guidance": ["FLOAT", {"default": 3.5, "min": 0.0, "max": 100.0, "step": 0.1}]},
            ["CONDITIONING"], False,
        ),
        "ConditioningZeroOut": ({"conditioning": ["CONDITIONING"]}, ["CONDITIONING"], False),
        "EmptySD3LatentImage": (
            {"width": size(1024), "height": size(1024),
             "batch_size": ["INT", {"default": 1, "min": 1, "max": 4096}]},
            ["LATENT"], False,
        ),
        "KSampler": (
            {"model": ["MODEL"],
             "seed": seed,
             "steps": ["INT", {"default": 20, "min": 1, "max": 10000}],
             "cfg": cfg,
             "sampler_name": [SAMPLERS], "scheduler": [SCHEDULERS], "positive": ["CONDITIONING"],
             "negative": ["CONDITIONING"], "latent_image": ["LATENT"],
             "denoise": ["FLOAT", {"default": 1.0, "min": 0.0, "max": 1.0, "step": 0.01}]},
            ["LATENT"], False,
        ),
        "EmptyFlux2LatentImage": (
            {"width": size(1024), "height": size(1024),
             "batch_size": ["INT", {"default": 1, "min": 1, "max": 4096}]},
            ["LATENT"], False,
        ),
        "Flux2Scheduler": (
            {"steps": ["INT", {"default": 20, "min": 1, "max": 4096}],
             "width": ["INT", {"default": 1024, "min": 16, "max": MAX_RESOLUTION, "step": 1}],
             "height": ["INT", {"default": 1024, "min": 16, "max": MAX_RESOLUTION, "step": 1}]},
            ["SIGMAS"], False,
        ),
        "RandomNoise": ({"noise_seed": seed}, ["NOISE"], False),
        "KSamplerSelect": ({"sampler_name": [SAMPLERS]}, ["SAMPLER"], False),
        "CFGGuider": (
            {"model": ["MODEL"], "positive": ["CONDITIONING"], "negative": ["CONDITIONING"], "cfg": cfg},
            ["GUIDER"], False,
        ),
        "SamplerCustomAdvanced": (
            {"noise": ["NOISE"], "guider": ["GUIDER"], "sampler": ["SAMPLER"], "sigmas": ["SIGMAS"],
             "latent_image": ["LATENT"]},
            ["LATENT", "LATENT"], False,  # output, denoised_output
        ),
        "VAEDecode": ({"samples": ["LATENT"], "vae": ["VAE"]}, ["IMAGE"], False),
        "SaveImage": (
            {"images": ["IMAGE"], "filename_prefix": ["STRING", {"default": "ComfyUI"}]},
            [], True,
        ),
    }  # fmt: skip
    return {
        name: {
            "input": {"required": required, **({"optional": optional[name]} if name in optional else {})},
            "input_order": {
                "required": list(required),
                **({"optional": list(optional[name])} if name in optional else {}),
            },
            "output": outputs,
            "output_is_list": [False] * len(outputs),
            "output_name": outputs,
            "name": name,
            "display_name": name,
            "description": "",
            "category": "",
            "output_node": output_node,
        }
        for name, (required, outputs, output_node) in specs.items()
    }


def _error(kind: str, message: str, details: str, input_name: str, **extra: Any) -> dict[str, Any]:
    return {"type": kind, "message": message, "details": details, "extra_info": {"input_name": input_name, **extra}}


def _check_value(name: str, value: Any, spec: list[Any]) -> dict[str, Any] | None:
    kind, options = spec[0], (spec[1] if len(spec) > 1 else {})
    if isinstance(kind, list):
        if value not in kind:
            shown = kind if len(kind) < 20 else [*kind[:20], "..."]
            return _error("value_not_in_list", "Value not in list", f"{name}: '{value}' not in {shown}", name,
                          input_config=spec, received_value=value)  # fmt: skip
        return None
    if kind in ("INT", "FLOAT"):
        try:
            number = int(value) if kind == "INT" else float(value)
        except (TypeError, ValueError):
            return _error("invalid_input_type", f"Failed to convert an input value to a {kind} value",
                          f"{name}, {value}, {kind}", name, received_value=value)  # fmt: skip
        if "min" in options and number < options["min"]:
            return _error("value_smaller_than_min", f"Value {number} smaller than min of {options['min']}",
                          name, name, received_value=value)  # fmt: skip
        if "max" in options and number > options["max"]:
            return _error("value_bigger_than_max", f"Value {number} bigger than max of {options['max']}",
                          name, name, received_value=value)  # fmt: skip
        return None
    if kind == "STRING" and not isinstance(value, str):
        return _error("invalid_input_type", "Failed to convert an input value to a STRING value",
                      f"{name}, {value}, STRING", name, received_value=value)  # fmt: skip
    if kind not in ("INT", "FLOAT", "STRING"):
        return _error("exception_during_inner_validation", f"Input {name} needs a link to a {kind} output",
                      f"{name}", name)  # fmt: skip
    return None


def validate_prompt(graph: dict[str, Any], specs: dict[str, Spec]) -> tuple[dict[str, Any] | None, dict[str, Any]]:
    """(top-level error, node errors) the way ComfyUI answers POST /prompt; (None, {}) when it is valid."""
    for node_id, node in graph.items():
        class_type = node.get("class_type") if isinstance(node, dict) else None
        if class_type is None:
            return {"type": "invalid_prompt", "message": "Cannot execute because a node is missing the class_type "
                    "property.", "details": f"Node ID '#{node_id}'", "extra_info": {}}, {}  # fmt: skip
        if class_type not in specs:
            return {"type": "invalid_prompt", "message": f"Cannot execute because node {class_type} does not exist.",
                    "details": f"Node ID '#{node_id}'", "extra_info": {}}, {}  # fmt: skip
    if not any(specs[node["class_type"]]["output_node"] for node in graph.values()):
        return {"type": "prompt_no_outputs", "message": "Prompt has no outputs", "details": "", "extra_info": {}}, {}
    node_errors: dict[str, Any] = {}
    for node_id, node in graph.items():
        spec, inputs, errors = specs[node["class_type"]], node.get("inputs", {}), []
        for name, input_spec in spec["input"]["required"].items():
            if name not in inputs:
                errors.append(_error("required_input_missing", "Required input is missing", name, name))
                continue
            value = inputs[name]
            if isinstance(value, list):
                if len(value) != 2 or str(value[0]) not in graph:
                    errors.append(_error("bad_linked_input", "Bad linked input, must be a length-2 list of "
                                         "[node_id, slot_index]", f"{name}", name))  # fmt: skip
                    continue
                source = specs[graph[str(value[0])]["class_type"]]["output"]
                received = source[value[1]] if 0 <= int(value[1]) < len(source) else None
                if received != input_spec[0]:
                    errors.append(_error("return_type_mismatch", "Return type mismatch between linked nodes",
                                         f"{name}, received_type({received}) mismatch input_type({input_spec[0]})",
                                         name))  # fmt: skip
                continue
            problem = _check_value(name, value, input_spec)
            if problem is not None:
                errors.append(problem)
        for name, input_spec in spec["input"].get("optional", {}).items():
            if name in inputs and not isinstance(inputs[name], list):
                problem = _check_value(name, inputs[name], input_spec)
                if problem is not None:
                    errors.append(problem)
        if errors:
            node_errors[node_id] = {"errors": errors, "dependent_outputs": [], "class_type": node["class_type"]}
    return None, node_errors
