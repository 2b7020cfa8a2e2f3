# A worker: loads the checkpoint once onto the GPU (CPU when none) and analyses queued videos.
# The official PyTorch CUDA runtime image brings torch, CUDA and cuDNN.
FROM pytorch/pytorch:2.5.1-cuda12.4-cudnn9-runtime

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1

RUN groupadd --system --gid 10001 app \
 && useradd --system --uid 10001 --gid app --home-dir /app --shell /usr/sbin/nologin app \
 && mkdir -p /data \
 && chown app:app /data

WORKDIR /app
COPY pyproject.toml README.md ./
COPY training ./training
COPY service ./service
COPY models ./models
# torch is already in the image and satisfies the package's range: pip keeps it.
RUN pip install .

USER 10001:10001
ENV MODEL_DIR=/app/models/default STORAGE_DIR=/data
HEALTHCHECK --interval=30s --timeout=10s --start-period=60s --retries=3 \
  CMD ["python", "-m", "service", "health", "--worker"]
CMD ["python", "-m", "service", "worker"]
