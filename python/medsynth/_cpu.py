"""CPU-specific set-up that must happen before the engine library is loaded."""
import os

AVX512 = {"avx512f", "avx512bw", "avx512dq", "avx512vl", "avx512cd"}


def cpu_flags() -> set:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("flags"):
                    return set(line.split(":", 1)[1].split())
    except OSError:
        pass
    return set()


def select_openblas_kernels() -> None:
    """Chooses the OpenBLAS kernels the engine's sgemm runs on.

    Debian's OpenBLAS (0.3.21) predates Zen 4 and runs its Haswell (AVX2) kernels there, and some
    machine images pin ``OPENBLAS_CORETYPE=Haswell``; its SkylakeX (AVX-512) kernels are about 1.8x
    faster on the same CPU. OpenBLAS reads ``OPENBLAS_CORETYPE`` once, when it is loaded, so this
    runs before ``medsynth._engine`` is imported (numpy's own OpenBLAS is a separate library and is
    not affected).

    ``MEDSYNTH_OPENBLAS_CORETYPE``: "auto" (default: SkylakeX on AVX-512 CPUs, else leave
    ``OPENBLAS_CORETYPE`` as it is), "keep" (never touch it), or a core name passed on as it is.
    """
    choice = os.environ.get("MEDSYNTH_OPENBLAS_CORETYPE", "auto")
    if choice == "keep":
        return
    if choice != "auto":
        os.environ["OPENBLAS_CORETYPE"] = choice
    elif AVX512 <= cpu_flags():
        os.environ["OPENBLAS_CORETYPE"] = "SkylakeX"
