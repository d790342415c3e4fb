"""Build and install afb-urr.

Besides the Python package this builds the compiled extension ``afb_urr._C`` (the fused
uncertain-region refinement op, ``torch.ops.afb_urr.local_refine``) from ``csrc/``:

* the CPU kernel (``csrc/*.cpp``) always;
* the CUDA kernel (``csrc/*.cu``) when torch was built with CUDA and a CUDA toolkit is
  found (``$CUDA_HOME``, else the parent of ``nvcc`` on ``PATH``, else ``/usr/local/cuda``)
  that has both ``bin/nvcc`` and the CUDA runtime library, or
  unconditionally with ``FORCE_CUDA=1`` (then a missing toolkit or a compile error fails
  the build).

Environment variables:

``CUDA_HOME``             CUDA toolkit to compile with.
``FORCE_CUDA=1``          build the CUDA kernel even when the checks above say no.
``TORCH_CUDA_ARCH_LIST``  GPU architectures, e.g. ``"8.6;9.0"``. When unset: the visible
                          GPU's architecture, or ``"9.0"`` when no GPU is visible.
``AFB_URR_CPU_ONLY=1``    build only the CPU kernel.
``AFB_URR_NO_EXTENSION=1`` build no extension (``afb_urr.ops`` then uses plain PyTorch).
``MAX_JOBS``              parallel compile jobs (ninja).

Build in place for a source checkout:
``python setup.py build_ext --inplace`` or ``pip install --no-build-isolation -e .``.
"""
import glob
import os
import sys

from setuptools import find_packages, setup

ROOT = os.path.dirname(os.path.abspath(__file__))


def _flag(name: str) -> bool:
    return os.environ.get(name, "0").strip().lower() in ("1", "true", "yes", "on")


def _has_cudart(home: str) -> bool:
    """Whether the toolkit at ``home`` has the CUDA runtime library the extension links."""
    patterns = ("lib64/libcudart.so*", "lib/libcudart.so*", "targets/*/lib/libcudart.so*",
                "lib/x64/cudart.lib", "lib64/libcudart_static.a")
    return any(glob.glob(os.path.join(home, p)) for p in patterns)


def _extensions():
    """The extension modules and build command classes (empty when nothing is to be built)."""
    if _flag("AFB_URR_NO_EXTENSION"):
        return [], {}
    try:
        import torch
        from torch.utils import cpp_extension
    except ImportError:
        print("afb-urr: torch is not importable at build time, so the compiled extension is not built "
              "(install torch first and build with --no-build-isolation)", file=sys.stderr)
        return [], {}

    cpp_sources = sorted(os.path.relpath(p, ROOT) for p in glob.glob(os.path.join(ROOT, "csrc", "*.cpp")))
    cu_sources = sorted(os.path.relpath(p, ROOT) for p in glob.glob(os.path.join(ROOT, "csrc", "*.cu")))
    home = cpp_extension.CUDA_HOME
    nvcc = os.path.join(home, "bin", "nvcc") if home is not None else None
    nvcc = nvcc if nvcc is not None and os.path.exists(nvcc) else None
    usable = nvcc is not None and _has_cudart(home)
    with_cuda = not _flag("AFB_URR_CPU_ONLY") and (
        _flag("FORCE_CUDA") or (torch.version.cuda is not None and usable))
    if (not with_cuda and nvcc is not None and torch.version.cuda is not None
            and not _flag("AFB_URR_CPU_ONLY")):
        # e.g. an nvcc wrapper on PATH makes torch guess CUDA_HOME=/usr/local, whose lib64 has
        # no CUDA runtime: linking would fail, so build the CPU kernel and say how to get both.
        print(f"afb-urr: {home} has nvcc but no CUDA runtime library (lib64/libcudart.so); building "
              "the CPU kernel only. Set CUDA_HOME to the toolkit (e.g. /usr/local/cuda) for the "
              "CUDA kernel.", file=sys.stderr)

    cxx_flags = ["-O3"]
    link_flags = []
    if not sys.platform.startswith("win"):
        # The kernels never rely on floating-point traps; without them GCC can vectorise the
        # branch-free selects of the running sums (results are unchanged).
        cxx_flags.append("-fno-trapping-math")
    if sys.platform.startswith("linux"):
        # at::parallel_for is an inline OpenMP region in torch's headers: without -fopenmp the
        # CPU kernel would run on one thread. libgomp resolves to the copy torch already loaded.
        cxx_flags.append("-fopenmp")
        link_flags.append("-fopenmp")
    macros = []
    if with_cuda:
        macros.append(("AFB_URR_WITH_CUDA", None))
        if not os.environ.get("TORCH_CUDA_ARCH_LIST"):
            if not torch.cuda.is_available():
                os.environ["TORCH_CUDA_ARCH_LIST"] = "9.0"
        extension = cpp_extension.CUDAExtension(
            "afb_urr._C", cpp_sources + cu_sources, define_macros=macros,
            extra_compile_args={"cxx": cxx_flags, "nvcc": ["-O3"]}, extra_link_args=link_flags)
    else:
        extension = cpp_extension.CppExtension(
            "afb_urr._C", cpp_sources, define_macros=macros,
            extra_compile_args={"cxx": cxx_flags}, extra_link_args=link_flags)
    print(f"afb-urr: building afb_urr._C with the CPU kernel{' and the CUDA kernel' if with_cuda else ''}"
          + (f" (TORCH_CUDA_ARCH_LIST={os.environ.get('TORCH_CUDA_ARCH_LIST', 'auto')})" if with_cuda else ""),
          file=sys.stderr)
    return [extension], {"build_ext": cpp_extension.BuildExtension}


ext_modules, cmdclass = _extensions()

setup(
    name="afb-urr",
    version="0.1.0",
    description="Video object segmentation with an Adaptive Feature Bank and Uncertain-Region Refinement",
    packages=find_packages(include=["afb_urr", "afb_urr.*"]),
    python_requires=">=3.10",
    install_requires=["torch", "torchvision", "numpy", "opencv-python", "pillow", "pyyaml", "pycocotools", "transformers", "tqdm"],
    entry_points={"console_scripts": [
        "afb-urr-infer = afb_urr.cli.infer:main",
        "afb-urr-train = afb_urr.cli.train:main",
        "afb-urr-eval = afb_urr.cli.eval:main",
        "afb-urr-bench = afb_urr.cli.benchmark:main",
        "afb-urr-bench-eval = afb_urr.cli.bench_eval:main",
        "afb-urr-bench-urr = afb_urr.cli.bench_urr:main",
    ]},
    ext_modules=ext_modules,
    cmdclass=cmdclass,
)
