"""Builds the medsynth Python package: the Swift engine (libMedSynth.so, Swift runtime linked
statically) and the CPython extension `medsynth._engine` over its C ABI.

`pip install .` and `pip install -e .` both work; the engine is built with `swift build -c release`
and placed beside the extension, which finds it through RUNPATH $ORIGIN (no LD_LIBRARY_PATH).
"""
import os
import shutil
import subprocess
from pathlib import Path

from setuptools import Extension, find_packages, setup
from setuptools.command.build_ext import build_ext

ROOT = Path(__file__).resolve().parent
ENGINE = "MedSynth"
LIBRARY = f"lib{ENGINE}.so"


class BuildSwiftEngine(build_ext):
    """Runs `swift build` for the engine, then compiles the C glue against it."""

    def run(self):
        base = ["swift", "build", "-c", "release", "--package-path", str(ROOT)]
        scratch = os.environ.get("MEDSYNTH_SWIFT_SCRATCH")
        if scratch:
            base += ["--scratch-path", scratch]
        subprocess.check_call(base + ["--product", ENGINE, "--static-swift-stdlib", "-Xswiftc", "-static-stdlib",
                                      "-Xlinker", f"-soname={LIBRARY}"])
        bin_dir = subprocess.check_output(base + ["--show-bin-path"], text=True).strip()
        out_dir = Path(self.get_ext_fullpath("medsynth._engine")).parent
        out_dir.mkdir(parents=True, exist_ok=True)
        # copy, then rename over the old library: a running process keeps its mapped copy intact
        staged = out_dir / (LIBRARY + ".tmp")
        shutil.copy2(Path(bin_dir) / LIBRARY, staged)
        os.replace(staged, out_dir / LIBRARY)
        for ext in self.extensions:
            ext.library_dirs.append(bin_dir)
        super().run()


setup(
    name="medsynth",
    version="0.1.0",
    description="Diffusion-generated labelled medical images and CNN classifiers, on a native Swift engine",
    long_description=(ROOT / "README.md").read_text(encoding="utf-8"),
    long_description_content_type="text/markdown",
    python_requires=">=3.10",
    package_dir={"": "python"},
    packages=find_packages("python"),
    install_requires=["numpy>=1.22", "tqdm>=4.60", "tomli>=1.1; python_version<'3.11'"],
    extras_require={"plot": ["matplotlib>=3.5"], "frame": ["pandas>=1.3"], "ray": ["ray>=2.9"],
                    "experiment": ["matplotlib>=3.5"],
                    "images": ["Pillow>=9.1"], "dicom": ["pydicom>=2.3"], "nifti": ["nibabel>=4"],
                    "all": ["matplotlib>=3.5", "pandas>=1.3", "ray>=2.9", "Pillow>=9.1", "pydicom>=2.3", "nibabel>=4"],
                    "test": ["pytest>=7", "nbclient>=0.7", "nbformat>=5", "ipykernel>=6", "matplotlib>=3.5"]},
    ext_modules=[
        Extension(
            "medsynth._engine",
            sources=sorted(str(p.relative_to(ROOT)) for p in (ROOT / "python" / "csrc").glob("*.c")),
            include_dirs=[str(ROOT / "Sources" / "CMedSynth" / "include"), str(ROOT / "python" / "csrc")],
            depends=sorted(str(p.relative_to(ROOT)) for p in (ROOT / "python" / "csrc").glob("*.h")),
            libraries=[ENGINE],
            runtime_library_dirs=["$ORIGIN"],
            extra_compile_args=["-O2", "-Wall", "-Wno-missing-field-initializers"],
        )
    ],
    entry_points={"console_scripts": ["medsynth=medsynth.cli:main"]},
    cmdclass={"build_ext": BuildSwiftEngine},
    zip_safe=False,
)
