#!/usr/bin/env bash
# Create .venv and install MedFusion Viewer with everything it needs (idempotent; re-run any time).
#   bash scripts/setup.sh            runtime + test dependencies
# System packages (Xvfb and Qt's X libraries, Orthanc for PACS tests, poppler for PDF checks) are
# installed with apt-get when running as root; otherwise the missing ones are listed.
set -euo pipefail
cd "$(dirname "$0")/.."

APT_PACKAGES=(xvfb xauth libxcb-icccm4 libxcb-keysyms1 libxcb-image0 libxcb-render-util0 libxcb-cursor0
  libxkbcommon-x11-0 libgl1 libegl1 libfontconfig1 libdbus-1-3 poppler-utils orthanc orthanc-dicomweb
  dicom3tools iproute2 util-linux)

missing=()
for pkg in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null; then
    echo "setup: installing system packages: ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
    # Orthanc's package starts a system service; tests run their own instance in a private netns.
    (service orthanc stop || systemctl stop orthanc || pkill -x Orthanc) >/dev/null 2>&1 || true
  else
    echo "setup: missing system packages (install them with your package manager): ${missing[*]}" >&2
  fi
fi

PYTHON=${PYTHON:-python3.11}
command -v "$PYTHON" >/dev/null || PYTHON=python3
if [ ! -x .venv/bin/python ]; then
  "$PYTHON" -m venv .venv
fi
stamp=.venv/.medfusion-installed
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
  .venv/bin/python -m pip install -q --upgrade pip
  # torch first, pinned: the wheels on this machine's disk (see DEVELOPERS.md).
  .venv/bin/python -m pip install -q torch==2.14.1 torchvision==0.29.1
  .venv/bin/python -m pip install -q -e ".[dev]"
  # ONNX Runtime (optional): ~2.5x faster exact CPU image encoder (docs/performance.md, Settings.encoder_runtime).
  .venv/bin/python -m pip install -q -e ".[onnx]" || echo "setup: onnxruntime not installed (the image encoder uses PyTorch)" >&2
  # MedSAM2 backend (optional): SAM2 without its CUDA extension (torch must already be installed).
  SAM2_BUILD_CUDA=0 .venv/bin/python -m pip install -q --no-build-isolation sam2==1.1.0 || echo "setup: sam2 not installed (MedSAM2 backend unavailable)" >&2
  touch "$stamp"
fi
echo "setup: ready (.venv)"
