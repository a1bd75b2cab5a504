"""Would Winograd convolutions make ResNet18 faster in float32 on ONNX Runtime? (issue 13: the fp32 targets)

ONNX Runtime's (and oneDNN's) 3x3 convolutions are direct: at batch 1 they already run near this CPU's float32
rate, so the only way left to a faster float32 ResNet18 is fewer multiplications. Winograd F(2x2, 3x3) needs 16
products per 2x2 output tile where a direct convolution needs 36 (2.25x fewer). This probe writes it as ONNX ops
(input transform as a grouped 4x4 convolution with stride 2, a batched MatMul per transform position, output
transform as a grouped 1x1 convolution and DepthToSpace) for the four stride-1 3x3 shapes of ResNet18 (83% of its
multiply-adds), and times against the same layer as one Conv (+ReLU), interleaved, in one process:

- ``direct``: one Conv node, as the exported model has it;
- ``winograd``: the rewritten layer (its largest relative difference from ``direct`` is printed: ~1e-6);
- ``gemm only``: the batched MatMul alone, a floor for any Winograd graph (the transforms cost extra).

    python bench/winograd_probe.py --threads 2

Needs ``onnx`` and ``onnxruntime`` (``pip install -e .[onnx]``).
"""
from __future__ import annotations

import argparse
import statistics
import time

import numpy as np

# F(2x2, 3x3) transforms: Y = A^T [(G g G^T) * (B^T d B)] A
B_T = np.array([[1, 0, -1, 0], [0, 1, 1, 0], [0, -1, 1, 0], [0, 1, 0, -1]], np.float32)
G = np.array([[1, 0, 0], [.5, .5, .5], [.5, -.5, .5], [0, 0, 1]], np.float32)
A_T = np.array([[1, 1, 1, 0], [0, 1, -1, -1]], np.float32)
SHAPES = ((64, 56), (128, 28), (256, 14), (512, 7))  # (channels, height = width) of ResNet18's stride-1 3x3 convs


def _model(nodes, inits, input_shape):
    from onnx import TensorProto, helper, numpy_helper

    graph = helper.make_graph(nodes, "probe", [helper.make_tensor_value_info("x", TensorProto.FLOAT, input_shape)],
        [helper.make_tensor_value_info("z", TensorProto.FLOAT, None)],
        [numpy_helper.from_array(np.asarray(v), k) for k, v in inits.items()])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])


def direct_conv(batch: int, channels: int, size: int, w: np.ndarray, b: np.ndarray):
    from onnx import helper

    nodes = [helper.make_node("Conv", ["x", "w", "b"], ["y"], pads=[1, 1, 1, 1], kernel_shape=[3, 3]),
             helper.make_node("Relu", ["y"], ["z"])]
    return _model(nodes, {"w": w, "b": b}, [batch, channels, size, size])


def winograd_conv(batch: int, channels: int, size: int, w: np.ndarray, b: np.ndarray):
    from onnx import helper

    c, k = channels, w.shape[0]
    tiles = (size + 1) // 2
    t = tiles * tiles
    inits = {
        # input transform: 16 outputs per input channel, one per (i, j) of B^T d B
        "wb": np.tile(np.einsum("ia,jb->ijab", B_T, B_T).reshape(16, 1, 4, 4), (c, 1, 1, 1)),
        "u": np.einsum("ia,kcab,jb->ijkc", G, w, G).reshape(16, k, c).astype(np.float32),
        # output transform: 4 outputs (p, q) per output channel from its 16 products
        "wa": np.tile(np.einsum("pi,qj->pqij", A_T, A_T).reshape(4, 16, 1, 1), (k, 1, 1, 1)),
        "ba": np.repeat(b, 4).astype(np.float32),
        "s1": np.array([batch, c, 16, t], np.int64), "s2": np.array([16, c, batch * t], np.int64),
        "s3": np.array([16, k, batch, t], np.int64), "s4": np.array([batch, k * 16, tiles, tiles], np.int64),
    }
    end = 2 * tiles + 1 - size
    nodes = [
        helper.make_node("Conv", ["x", "wb"], ["v"], group=c, strides=[2, 2], kernel_shape=[4, 4],
                         pads=[1, 1, end, end]),
        helper.make_node("Reshape", ["v", "s1"], ["v1"]),
        helper.make_node("Transpose", ["v1"], ["v2"], perm=[2, 1, 0, 3]),
        helper.make_node("Reshape", ["v2", "s2"], ["v3"]),
        helper.make_node("MatMul", ["u", "v3"], ["m"]),
        helper.make_node("Reshape", ["m", "s3"], ["m1"]),
        helper.make_node("Transpose", ["m1"], ["m2"], perm=[2, 1, 0, 3]),
        helper.make_node("Reshape", ["m2", "s4"], ["m3"]),
        helper.make_node("Conv", ["m3", "wa", "ba"], ["o"], group=k, kernel_shape=[1, 1]),
        helper.make_node("DepthToSpace", ["o"], ["y"], blocksize=2, mode="CRD"),
    ]
    last = "y"
    if 2 * tiles != size:  # odd sizes: the last tile row and column overhang
        inits.update(st=np.array([0, 0], np.int64), en=np.array([size, size], np.int64),
                     ax=np.array([2, 3], np.int64))
        nodes.append(helper.make_node("Slice", ["y", "st", "en", "ax"], ["ys"]))
        last = "ys"
    nodes.append(helper.make_node("Relu", [last], ["z"]))
    return _model(nodes, inits, [batch, channels, size, size])


def gemm_only(batch: int, channels: int, size: int, u: np.ndarray):
    from onnx import helper

    t = ((size + 1) // 2) ** 2
    return _model([helper.make_node("MatMul", ["u", "x"], ["z"])], {"u": u}, [16, channels, batch * t])


def session(model, threads: int):
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.log_severity_level = 3
    # three sessions take turns: idle threads that spin would steal the cores from the one running
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return ort.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--batches", type=int, nargs="+", default=[1, 8])
    parser.add_argument("--rounds", type=int, default=15, help="interleaved rounds of 3 runs each")
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    print(f"ONNX Runtime, {args.threads} threads, float32, conv 3x3 stride 1 + ReLU; medians of {args.rounds} "
          "interleaved rounds")
    for batch in args.batches:
        for channels, size in SHAPES:
            w = (rng.standard_normal((channels, channels, 3, 3)) * (2 / (9 * channels)) ** .5).astype(np.float32)
            b = (rng.standard_normal(channels) * .1).astype(np.float32)
            x = rng.standard_normal((batch, channels, size, size)).astype(np.float32)
            u = np.einsum("ia,kcab,jb->ijkc", G, w, G).reshape(16, channels, channels).astype(np.float32)
            t = ((size + 1) // 2) ** 2
            runs = {"direct": (session(direct_conv(batch, channels, size, w, b), args.threads), x),
                    "winograd": (session(winograd_conv(batch, channels, size, w, b), args.threads), x),
                    "gemm only": (session(gemm_only(batch, channels, size, u), args.threads),
                                  rng.standard_normal((16, channels, batch * t)).astype(np.float32))}
            ref = runs["direct"][0].run(None, {"x": x})[0]
            got = runs["winograd"][0].run(None, {"x": x})[0]
            err = float(np.abs(got - ref).max() / np.abs(ref).max())
            times = {name: [] for name in runs}
            for _ in range(args.rounds):
                for name, (sess, feed) in runs.items():
                    start = time.perf_counter()
                    for _ in range(3):
                        sess.run(None, {"x": feed})
                    times[name].append((time.perf_counter() - start) / 3 * 1000)
            ms = {name: statistics.median(v) for name, v in times.items()}
            gflops = 2 * batch * size * size * 9 * channels * channels / ms["direct"] / 1e6
            print(f"batch {batch} C {channels:3d} {size:2d}x{size:<2d}: direct {ms['direct']:6.2f} ms "
                  f"({gflops:.0f} GFLOP/s), winograd {ms['winograd']:6.2f} ms "
                  f"({ms['direct'] / ms['winograd']:.2f}x), gemm only {ms['gemm only']:6.2f} ms "
                  f"({ms['direct'] / ms['gemm only']:.2f}x); winograd vs direct max rel diff {err:.1e}", flush=True)


if __name__ == "__main__":
    main()
