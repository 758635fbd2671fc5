"""Seconds per volume of the full-width seed 000 2D U-Net on a two-leg Dixon volume, CPU.

The network is MONAI's UNet with the seed 000 settings (channels 64-1024, strides 2 x 4,
2 residual units, instance norm, LeakyReLU; random weights -- timing does not depend on
them) run slice-wise with 416 x 240 windows on a 448 x 266 x 60 leg phantom at
0.71 x 0.71 x 5 mm (the seed 000 protocol), through the full ``segment_volumes`` path
(preprocessing, windows, blending, resampling back, post-processing), once with PyTorch
and once with ONNX Runtime. The one-off ONNX export is timed separately.

    python benchmarks/bench_segment.py                 # both engines, 2 threads
    python benchmarks/bench_segment.py --threads 4 --overlap 0.25 --no-crop

Target: <= 60 s per volume on 2 cores. The load average is printed with the result
because the figure means little on a busy machine.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import numpy as np


def _config(overlap: float, crop: bool, batch: int) -> dict:
    return {
        "name": "bench-seed000-unet2d",
        "architecture": {"name": "unet2d", "params": {}},  # seed 000 defaults: full width
        "inputs": {"contrasts": ["water"], "modality": "mri"},
        "preprocessing": {"orientation": "RAS", "target_spacing_mm": None,
                          "intensity": {"mode": "percentile"}, "crop_foreground": crop},
        "inference": {"mode": "slice2d", "roi_size": [416, 240], "overlap": overlap, "sw_batch_size": batch},
        "postprocessing": {"fill_holes": True, "largest_component": True, "lr_consistency": True},
        "labels": {"scheme": "leg", "ids": {str(i): n for i, n in enumerate([
            "leg_anterior_compartment_left", "leg_anterior_compartment_right",
            "leg_deep_posterior_compartment_left", "leg_deep_posterior_compartment_right",
            "leg_lateral_compartment_left", "leg_lateral_compartment_right", "soleus_left", "soleus_right",
            "gastrocnemius_left", "gastrocnemius_right"], start=1)}},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--overlap", type=float, default=0.5)
    parser.add_argument("--batch", type=int, default=4, help="windows per forward pass")
    parser.add_argument("--no-crop", action="store_true", help="do not crop to the body first")
    parser.add_argument("--skip-onnx", action="store_true")
    parser.add_argument("--skip-torch", action="store_true")
    args = parser.parse_args()

    import torch

    torch.set_num_threads(args.threads)
    from myoscan.phantom import make_phantom
    from myoscan.segment import build_network, load_bundle, save_bundle
    from myoscan.segment.inference import window_starts
    from myoscan.segment.predict import segment_volumes
    from myoscan.segment.preprocess import prepare_image

    phantom = make_phantom("leg", "dixon", seed=1)
    water = phantom.images["water"]
    config = _config(args.overlap, not args.no_crop, args.batch)
    torch.manual_seed(0)
    network = build_network(config)
    n_params = sum(p.numel() for p in network.parameters()) / 1e6
    with tempfile.TemporaryDirectory() as tmp:
        bundle = load_bundle(save_bundle(Path(tmp) / "bench", network=network, config=config,
                                         model_card="benchmark model, random weights"))
        prepared = prepare_image([water], bundle.settings.preprocessing)
        print(f"volume {water.spatial_shape} at {water.spacing_mm} mm; network grid {prepared.shape}; "
              f"unet2d {n_params:.1f} M parameters; window 416 x 240, overlap {args.overlap}, "
              f"{args.threads} threads, torch {torch.__version__}")
        results = {}
        if not args.skip_torch:
            load = os.getloadavg()[0]
            tic, cpu = time.perf_counter(), time.process_time()
            seg = segment_volumes({"water": water}, bundle, device="cpu", show_progress=False)
            results["pytorch"] = (time.perf_counter() - tic, time.process_time() - cpu, load)
            assert seg.labels.shape == water.shape
        if not args.skip_onnx:
            os.environ["MYOSCAN_CACHE"] = tmp
            from myoscan.segment.onnx import cached_onnx_model

            tic = time.perf_counter()
            cached_onnx_model(bundle, (416, 240))
            print(f"onnx export (once per model, cached): {time.perf_counter() - tic:.1f} s")
            load = os.getloadavg()[0]
            tic, cpu = time.perf_counter(), time.process_time()
            onnx_seg = segment_volumes({"water": water}, bundle, use_onnx=True, show_progress=False)
            results["onnxruntime"] = (time.perf_counter() - tic, time.process_time() - cpu, load)
            if not args.skip_torch:
                agreement = float(np.mean(onnx_seg.labels.array == seg.labels.array))
                print(f"onnxruntime vs pytorch label agreement: {agreement:.5f}")
        size_x, size_y, size_z = prepared.shape
        starts = [window_starts(n, roi, args.overlap) for n, roi in ((size_x, 416), (size_y, 240))]
        windows = len(starts[0]) * len(starts[1]) * size_z
        for engine, (seconds, cpu, load) in results.items():
            print(f"{engine:<12} {seconds:7.1f} s per volume, {cpu:6.1f} s CPU "
                  f"(~{cpu / args.threads:.0f} s on {args.threads} idle cores; load average at start "
                  f"{load:.2f}, {os.cpu_count()} CPUs; {windows} windows)")


if __name__ == "__main__":
    main()
