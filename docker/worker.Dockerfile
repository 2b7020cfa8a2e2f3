# A worker: loads the checkpoint once onto the GPU (CPU when none) and analyses queued videos.
# The official PyTorch CUDA runtime image brings torch, CUDA and cuDNN.

# The wheel, built from the source tree; the image installs it and keeps no source.
FROM pytorch/pytorch:2.5.1-cuda12.4-cudnn9-runtime AS build
ENV PYTHONDONTWRITEBYTECODE=1 PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /src
COPY pyproject.toml README.md ./
COPY training ./training
COPY service ./service
RUN pip wheel --no-deps . -w /dist

FROM pytorch/pytorch:2.5.1-cuda12.4-cudnn9-runtime

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1

RUN groupadd --system --gid 10001 app \
 && useradd --system --uid 10001 --gid app --home-dir /app --shell /usr/sbin/nologin app \
 && mkdir -p /data \
 && chown app:app /data

# The package carries the served checkpoint and the face detector's weights (package data).
# torch is already in the image and satisfies the package's range: pip keeps it.
COPY --from=build /dist /dist
RUN pip install /dist/*.whl && rm -rf /dist

# Run from a folder that holds no source: everything is found in the installed package.
WORKDIR /app
USER 10001:10001
# RAMFER_MODEL_DIR unset: the checkpoint in the package. Your own: mount it and set RAMFER_MODEL_DIR (docs/operations.md, "Docker").
ENV RAMFER_STORAGE_DIR=/data
HEALTHCHECK --interval=30s --timeout=10s --start-period=60s --retries=3 \
  CMD ["python", "-m", "service", "health", "--worker"]
CMD ["python", "-m", "service", "worker"]
